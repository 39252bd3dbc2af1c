"""Admin for integrations and packages. Secrets are write-only; saving stores a new version
through the same service as the dashboard; versions are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from dashboard.access import deny
from dashboard.forms import rebase_form
from dashboard.stepup import stepup_is_fresh, stepup_redirect
from onboarding.admin_access import (  # the import also registers users, groups, grants
    STEPUP_FIELD,
    NulSafeListMixin,
    ReadOnlyAdmin,
    SelectionCheckMixin,
    StepUpFormMixin,
    posted_actions,
)
from onboarding.admin_promotion import ACTIONS as PROMOTION_ACTIONS
from onboarding.admin_promotion import (
    promote_to_production,
    require_offered,
    roll_back_production,
)
from onboarding.crypto import DecryptionError
from onboarding.models import (
    AuditEvent,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    ResponseFormat,
    Role,
)
from onboarding.services.access import active_grants, can, visible_integrations
from onboarding.services.audit import RequestMeta, audit_unreadable_ids, row_unreadable
from onboarding.services.fields import field_label
from onboarding.services.packages import (
    UNREADABLE,
    PackageChanged,
    PackageData,
    credential_shown,
    integration_delete,
    integration_name_refusal,
    integration_names_taken,
    integration_save,
    package_changed_since,
    package_store,
    package_validate,
)
from onboarding.services.promotion import promotion_offered

KEEP = "Leave blank to keep the current value."


def _shown_current(name: str) -> Any:
    """A read-only cell of the current version's `name`, for users who may view a package but
    not edit it. Django's read-only rendering looks the form's fields up on the package, which
    has none of them, and printed "None" for every credential and setting."""
    @admin.display(description=field_label(name, capitalised=True))
    def shown(obj: OnboardingPackage) -> Any:
        version = obj.current_version
        if name in PackageVersion.CREDENTIAL_FIELDS:
            return credential_shown(version=version, name=name)
        if version is None:
            return "not set"
        if name == "response_format":
            return version.get_response_format_display()
        return getattr(version, name) or "not set"

    shown.__name__ = f"current_{name}"
    return shown


_READ_ONLY_FIELDSETS = [
    (None, {"fields": ["integration", "environment"]}),
    ("Credentials", {"fields": [_shown_current(n) for n in PackageVersion.CREDENTIAL_FIELDS]}),
    ("Configuration", {"fields": [_shown_current(n) for n in PackageVersion.CONFIG_FIELDS]}),
]


class PackageAdminForm(forms.ModelForm):
    client_id = forms.CharField(required=False, strip=True)
    username = forms.CharField(required=False, strip=True, label="User name (e-mail)")
    client_secret = forms.CharField(required=False, strip=False, widget=forms.PasswordInput)
    password = forms.CharField(required=False, strip=False, widget=forms.PasswordInput)
    company_id = forms.IntegerField(required=False, min_value=1)
    location_id = forms.CharField(required=False, max_length=64)
    response_format = forms.ChoiceField(choices=ResponseFormat.choices)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    # The version this page was filled from (0: none), as on the dashboard's form: saving over
    # a version stored meanwhile is refused instead of silently undoing it. A page served
    # before this field existed posts none and is saved as before.
    base_version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    class Meta:
        model = OnboardingPackage
        fields = ["integration", "environment"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.current_version if self.instance.pk else None
        self.fields["base_version"].initial = current.number if current else 0
        for name in (*PackageVersion.CREDENTIAL_FIELDS, *PackageVersion.CONFIG_FIELDS):
            # The dashboard's words ("Client ID"), not Django's from the name ("Client id").
            self.fields[name].label = self.fields[name].label or field_label(name,
                                                                             capitalised=True)
        for name in PackageVersion.CREDENTIAL_FIELDS:
            shown = credential_shown(version=current, name=name)
            # The admin renders help text as HTML: the masked value is escaped here.
            self.fields[name].help_text = (format_html("Currently: {}. {}", shown, KEEP)
                                           if current else "")
        if current is not None:
            for name in PackageVersion.CONFIG_FIELDS:
                self.fields[name].initial = getattr(current, name)
        if self.instance.pk:
            # The slot itself never moves to another integration or environment.
            for name in ("integration", "environment"):
                if name in self.fields:  # absent on the read-only (view permission) form
                    self.fields[name].disabled = True

    def package_data(self, current: PackageVersion | None) -> PackageData:
        cleaned = self.cleaned_data

        def keep(name: str) -> str | None:
            value = cleaned.get(name) or None
            if value is None and current is not None and name in ("client_id", "username"):
                return getattr(current, name)
            return value

        return PackageData(
            client_id=keep("client_id") or "",
            username=keep("username") or "",
            client_secret=keep("client_secret"),
            password=keep("password"),
            company_id=cleaned.get("company_id"),
            location_id=cleaned.get("location_id") or "",
            response_format=cleaned["response_format"],
            notes=cleaned.get("notes") or "",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        current = self.instance.current_version if self.instance.pk else None
        stale = package_changed_since(current=current, based_on=cleaned.get("base_version"))
        if stale:
            raise ValidationError(rebase_form(self, current))
        try:
            self.data_for_service = self.package_data(current)
        except DecryptionError:
            raise ValidationError(
                f"The current credentials {UNREADABLE}; enter all four."
            ) from None
        for name in PackageVersion.SECRET_FIELDS:
            if current is not None and not cleaned.get(name):
                try:
                    getattr(current, name)
                except DecryptionError:
                    self.add_error(name, f"The current value {UNREADABLE}; enter it again.")
        try:
            package_validate(data=self.data_for_service)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field, errors)
        return cleaned


# A package saved every day would list years of versions on its change page; the newest are
# what an admin compares, and each environment's whole history has a dashboard page of its own.
VERSIONS_LISTED = 20


class NewestVersionsFormSet(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet[PackageVersion]:
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset()[:VERSIONS_LISTED]
        return self._queryset


class VersionInline(admin.TabularInline):
    model = PackageVersion
    formset = NewestVersionsFormSet
    extra = 0
    can_delete = False
    fields = ["number", "source", "client_id_masked", "secret_state", "company_id",
              "response_format", "created_by", "created_at"]
    readonly_fields = fields
    ordering = ["-number"]

    @admin.display(description="Client ID")
    def client_id_masked(self, obj: PackageVersion) -> str:
        return credential_shown(version=obj, name="client_id")

    @admin.display(description="Secrets")
    def secret_state(self, obj: PackageVersion) -> str:
        return ", ".join(
            f"{name.replace('_', ' ')}: {credential_shown(version=obj, name=name)}"
            for name in PackageVersion.SECRET_FIELDS
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[PackageVersion]:
        # Each row names its version (package and integration) and who made it: read with the
        # versions, not three queries a row.
        return super().get_queryset(request).select_related("package__integration",
                                                            "created_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _env_allows(request: HttpRequest, obj: OnboardingPackage | None, role: Role) -> bool:
    if obj is None:
        return any(can(user=request.user, action=role, environment=env) for env in Environment)
    return can(user=request.user, action=role, environment=obj.environment,
               integration=obj.integration)


# Django's admin does not hide POSTed secrets from error reports; this form posts two.
@method_decorator(sensitive_post_parameters(*PackageVersion.SECRET_FIELDS, STEPUP_FIELD),
                  name="changeform_view")
@admin.register(OnboardingPackage)
class OnboardingPackageAdmin(NulSafeListMixin, StepUpFormMixin, admin.ModelAdmin):
    form = PackageAdminForm
    list_display = ["integration", "environment", "version_number", "client_id_masked"]
    list_filter = ["environment"]
    list_select_related = ["integration", "current_version"]
    search_fields = ["integration__name", "integration__slug"]
    inlines = [VersionInline]
    fieldsets = [
        (None, {"fields": ["integration", "environment", "base_version"]}),
        ("Credentials", {"fields": list(PackageVersion.CREDENTIAL_FIELDS)}),
        ("Configuration", {"fields": list(PackageVersion.CONFIG_FIELDS)}),
    ]
    readonly_fields = ["versions_listed"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        if not self.has_change_permission(request, obj):
            fieldsets = _READ_ONLY_FIELDSETS
        return [*fieldsets, ("Versions", {"fields": ["versions_listed"]})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        if obj is not None and not self.has_change_permission(request, obj):
            return ["integration", "environment", "versions_listed",
                    *(field for _, options in _READ_ONLY_FIELDSETS[1:]
                      for field in options["fields"])]
        return list(super().get_readonly_fields(request, obj))

    @admin.display(description="Listed below")
    def versions_listed(self, obj: OnboardingPackage) -> str:
        total = obj.versions.count()
        listed = (f"{total} version{pluralize(total)}, all listed." if total <= VERSIONS_LISTED
                  else f"The newest {VERSIONS_LISTED} of {total} versions.")
        if obj.environment != Environment.PRODUCTION:
            url = reverse("dashboard:sandbox_history", kwargs={"uuid": obj.integration.uuid})
            return format_html('{} Every Sandbox version is on the <a href="{}">Sandbox '
                               'versions</a> page.', listed, url)
        url = reverse("dashboard:production_history", kwargs={"uuid": obj.integration.uuid})
        return format_html('{} Every Production version, with its promotions and rollbacks, '
                           'is on the <a href="{}">Production history</a> page.', listed, url)

    @admin.display(description="Version")
    def version_number(self, obj: OnboardingPackage) -> str:
        return f"v{obj.current_version.number}" if obj.current_version else "none"

    @admin.display(description="Client ID")
    def client_id_masked(self, obj: OnboardingPackage) -> str:
        return credential_shown(version=obj.current_version, name="client_id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OnboardingPackage]:
        # The list shows only packages the user may view, the same answer as `can()`: an
        # environment held everywhere, plus Production of integrations granted one by one.
        user = request.user
        visible = Q(pk__in=[])
        for env in Environment:
            if can(user=user, action=Role.VIEW, environment=env):
                visible |= Q(environment=env)
        scoped = {g.integration_id for g in active_grants(user=user) if g.integration_id}
        if scoped:
            visible |= Q(environment=Environment.PRODUCTION, integration_id__in=scoped)
        return super().get_queryset(request).filter(visible)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _env_allows(request, obj, Role.VIEW)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _env_allows(request, obj, Role.EDIT)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _env_allows(request, None, Role.EDIT)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # history is kept; an integration is deleted as a whole by a superuser

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: Any = None) -> HttpResponse:
        try:
            return self._package_changeform(request, object_id, form_url, extra_context)
        except PackageChanged:
            # Someone saved a version between this form's clean() and its save (the service
            # checks again under the package lock; the admin's transaction rolled back, so
            # nothing was stored). Shown again, the form's clean() now sees that version and
            # refuses with what the user typed kept, as when it was saved long before. Versions
            # only grow, so this second showing cannot race in the same way.
            return self._package_changeform(request, object_id, form_url, extra_context)

    def _package_changeform(self, request: HttpRequest, object_id: str | None, form_url: str,
                            extra_context: Any) -> HttpResponse:
        # Production edits: a refused POST is audited; an allowed one needs a fresh step-up.
        obj = self.get_object(request, object_id) if object_id else None
        environment = obj.environment if obj else request.POST.get("environment")
        if environment == Environment.PRODUCTION:
            integration = obj.integration if obj else None
            if not can(user=request.user, action=Role.EDIT, environment=environment,
                       integration=integration):
                if request.method == "POST":
                    raise deny(request, action=Role.EDIT, environment=environment,
                               integration=integration, target=str(obj.uuid) if obj else "")
            else:
                return self.stepup_changeform(request, super().changeform_view, object_id,
                                              form_url, extra_context)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: OnboardingPackage, form: Any,
                   change: bool) -> None:
        version = package_store(
            integration=obj.integration, environment=obj.environment,
            data=form.data_for_service, actor=request.user,
            meta=RequestMeta.from_request(request),
            # Checked again under the package lock: a save in the moment since clean() makes
            # this request fail (nothing stored) rather than undo it.
            based_on=form.cleaned_data.get("base_version"),
        ).version
        obj.pk = version.package_id
        obj.current_version = version
        obj._state.adding = False


class IntegrationAdminForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = ["name", "slug", "owner", "notes"]

    def clean(self) -> dict[str, Any]:
        # The dashboard's rule: commands take a name or a slug, so neither may be another
        # integration's name or slug. A field with an error here skips the model's own unique
        # check, so a duplicate slug is reported once.
        cleaned = super().clean()
        refusal = integration_name_refusal(name=cleaned.get("name") or "")
        if refusal:
            self.add_error("name", refusal)
        taken = integration_names_taken(name=cleaned.get("name") or "",
                                        slug=cleaned.get("slug") or "",
                                        exclude_pk=self.instance.pk)
        for field, message in taken.items():
            self.add_error(field, message)
        return cleaned


def _require_fresh_stepup(request: HttpRequest) -> None:
    """The pages that lead to a deletion ask for the password first; this is the last guard,
    so a request that slips past them (a new page, a forged POST) deletes nothing."""
    if not stepup_is_fresh(request):
        raise PermissionDenied("Confirm your password before deleting an integration.")


@admin.register(Integration)
class IntegrationAdmin(NulSafeListMixin, SelectionCheckMixin, admin.ModelAdmin):
    form = IntegrationAdminForm
    list_display = ["name", "slug", "owner", "created_at"]
    list_select_related = ["owner"]  # one query for the page, not one per row
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "owner", "notes"]
    actions = [promote_to_production, roll_back_production]

    # Promotion: release managers reach the list through their promote right, and the
    # confirmation pages carry a password field that must never reach an error report.
    @method_decorator(sensitive_post_parameters("confirm_password"))
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Every posted action value, not the one Django will pick: see posted_actions.
        actions = posted_actions(request)
        if actions & set(PROMOTION_ACTIONS):
            require_offered(request)
        if "delete_selected" in actions and not stepup_is_fresh(request):
            return stepup_redirect(request)
        return super().changelist_view(request, extra_context)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if super().has_view_permission(request, obj):
            return True
        # Reached through a promote right, which a grant may give on one integration only:
        # the list (get_queryset) and each page show only what the user may view.
        if not promotion_offered(user=request.user):
            return False
        return obj is None or visible_integrations(user=request.user).filter(pk=obj.pk).exists()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Integration]:
        queryset = super().get_queryset(request)
        if super().has_view_permission(request):
            return queryset
        return queryset.filter(pk__in=visible_integrations(user=request.user).values("pk"))

    def save_model(self, request: HttpRequest, obj: Integration, form: Any,
                   change: bool) -> None:
        before = ({name: form.initial.get(name) for name in ("name", "slug")} if change
                  else None)
        if not change and obj.owner_id is None:
            obj.owner = request.user
        integration_save(integration=obj, before=before, changed=form.changed_data,
                         actor=request.user, meta=RequestMeta.from_request(request))

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: Any = None) -> HttpResponse:
        # An integration's Production credentials and history go with it: confirm first
        # (those who may not delete get Django's refusal, not a password prompt).
        if self.has_delete_permission(request) and not stepup_is_fresh(request):
            return stepup_redirect(request)
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not promotion_offered(user=request.user):
            for name in PROMOTION_ACTIONS:
                actions.pop(name, None)
        return actions

    # Deleting: superusers only, through integration_delete (audited), which first clears the
    # PROTECT links that keep versions from being deleted by accident.
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        deleted, counts, _perms_needed, _protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: Integration) -> None:
        _require_fresh_stepup(request)
        integration_delete(integration=obj, actor=request.user,
                           meta=RequestMeta.from_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        _require_fresh_stepup(request)  # before the first row, not after some are gone
        for integration in queryset:
            self.delete_model(request, integration)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "at", "actor_name", "action", "integration_name", "environment",
                    "target"]
    list_filter = ["action", "environment"]
    search_fields = ["actor_name", "integration_name", "target"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    # A row changed outside Aisle Keys may not read as an event (SQLite keeps any value in any
    # column). The admin's pages cannot list such a row; the Audit log page names it.
    UNREADABLE = ("Some events of the audit log cannot be read: they were changed outside Aisle "
                  "Keys. The Audit log lists them by row; run manage.py verify_audit_log.")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: Any = None) -> HttpResponse:
        # Asked first: the admin would call such a row "deleted", hiding the tampering.
        if object_id.isdecimal() and object_id.isascii() and audit_unreadable_ids(
                AuditEvent.objects.filter(pk=object_id)):
            return self._unreadable(request)
        return super().change_view(request, object_id, form_url, extra_context=extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        try:
            response = super().changelist_view(request, extra_context=extra_context)
            if hasattr(response, "render"):
                response.render()  # the rows are read here: inside the try
        except Exception as exc:
            # Only when a row is in fact unreadable: any other error (a bug) stays an error,
            # never reported as tampering.
            if not row_unreadable(exc) or not audit_unreadable_ids(AuditEvent.objects.all()):
                raise
            return self._unreadable(request)
        return response

    def _unreadable(self, request: HttpRequest) -> HttpResponse:
        messages.error(request, self.UNREADABLE)
        return redirect("dashboard:audit")
