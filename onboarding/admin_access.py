"""Admin pages that change who may do what: users, groups, and (read-only) access grants.

Permission and group-membership changes are audited by signal receivers, which see no request;
these admins say who is acting, so the events name the administrator instead of "system". They
also ask for the password again (step-up) before any such page, like every other change of
Production access. Grants are listed read-only: they are made and ended through the grant
service (Production access page, grant_access / revoke_access), which audits them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db import connections, models, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from dashboard.stepup import stepup_confirm, stepup_is_fresh, stepup_redirect
from onboarding.models import AccessGrant
from onboarding.services.audit import RequestMeta, audit_acting


class NulSafeListMixin:
    """A list filter or search value holding a NUL (never typed, only forged or mangled) is an
    invalid lookup, as Django's admin treats other bad ones (back to the list, "?e=1"): PostgreSQL
    refuses NUL in text, which became a 500 as the list was read."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        if any("\x00" in key or "\x00" in value
               for key, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("a NUL in the list's parameters")
        return super().get_changelist_instance(request)


class ReadOnlyAdmin(NulSafeListMixin, admin.ModelAdmin):
    """Records written only by services (audit events, grants): the admin may look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


STEPUP_FIELD = "confirm_password"
STEPUP_ERROR = "Your password was not confirmed; nothing was saved. Enter it again."


def _with_password_field(form_class: type[forms.BaseForm], request: HttpRequest
                         ) -> type[forms.BaseForm]:
    """`form_class` with a password field that confirms the step-up when the form is valid."""

    class ConfirmedForm(form_class):
        confirm_password = forms.CharField(
            label="Your password", required=False, strip=False, widget=forms.PasswordInput,
            help_text="Your password confirmation expired while this form was open: enter "
                      "your password to save it.")

        def clean_confirm_password(self) -> str:
            if not stepup_confirm(request, password=self.cleaned_data.get(STEPUP_FIELD)):
                raise ValidationError(STEPUP_ERROR)
            return ""

    return ConfirmedForm


class StepUpFormMixin:
    """Change forms that need a fresh step-up. Opening one without it goes to the password page
    first; saving one whose confirmation expired while it was open is not thrown away: the form
    comes back with what was typed (never a secret, which no admin form echoes) and a password
    field, as the dashboard's forms do."""

    def stepup_changeform(self, request: HttpRequest, view: Any, *args: Any,
                          **kwargs: Any) -> HttpResponse:
        if not stepup_is_fresh(request):
            if request.method != "POST":
                return stepup_redirect(request)
            request._aislekeys_stepup_in_form = True
        return view(request, *args, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if getattr(request, "_aislekeys_stepup_in_form", False):
            return [*fieldsets, ("Confirm your password", {"fields": [STEPUP_FIELD]})]
        return fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if not getattr(request, "_aislekeys_stepup_in_form", False):
            return super().get_form(request, obj, **kwargs)
        # The model knows no such field: build the model form without it, then add it.
        if "fields" in kwargs and kwargs["fields"] is not None:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != STEPUP_FIELD]
        return _with_password_field(super().get_form(request, obj, **kwargs), request)


def posted_actions(request: HttpRequest) -> set[str]:
    """Every admin action a changelist POST names, for checks made before Django runs one.

    Django runs `getlist("action")[index]`, so a check of `POST.get("action")` (the last value)
    is passed by posting the action to check and then another. Whichever value Django picks is
    one of these, so a check of each of them cannot be sidestepped by the order or the index."""
    if request.method != "POST":
        return set()
    return set(request.POST.getlist("action"))


class SelectionCheckMixin:
    """Bulk actions refuse a selection that names no row instead of failing with a 500.

    Django's admin filters `pk__in=` the posted `_selected_action` values as they come: one
    that is not a key ("abc", a NUL) raises ValueError from the lookup, and an integer no
    column holds raises OverflowError on SQLite (an out-of-range error on PostgreSQL). The
    list's checkboxes only post real keys, so such a value is forged or mangled; say so and
    change nothing."""

    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        pk = self.model._meta.pk
        # SQLite answers any type with its 64-bit range: ask only for integer columns.
        low, high = ((connections[queryset.db].ops.integer_field_range(pk.get_internal_type()))
                     if isinstance(pk, models.IntegerField) else (None, None))
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                key = pk.to_python(value)
                if low is not None and not low <= key <= high:
                    raise ValidationError("beyond the key column's range")
        except ValidationError:
            self.message_user(request, "The selection names rows that do not exist; nothing "
                              "was changed.", messages.WARNING)
            return None
        return super().response_action(request, queryset)


class ActingAdminMixin(SelectionCheckMixin, StepUpFormMixin):
    """Run every writing admin view inside `audit_acting`, after a fresh step-up."""

    def _acting(self, request: HttpRequest, view: Any, *args: Any, every_method: bool = True,
                **kwargs: Any) -> HttpResponse:
        # Pages: confirm before filling them in. Lists: only their bulk actions (POST) need it.
        if (every_method or request.method == "POST") and not stepup_is_fresh(request):
            return stepup_redirect(request)
        with audit_acting(actor=request.user, meta=RequestMeta.from_request(request)):
            return view(request, *args, **kwargs)

    @method_decorator(sensitive_post_parameters(STEPUP_FIELD))
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with audit_acting(actor=request.user, meta=RequestMeta.from_request(request)):
            return self.stepup_changeform(request, super().changeform_view, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._acting(request, super().changelist_view, *args, every_method=False,
                            **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._acting(request, super().delete_view, *args, **kwargs)


class AuditedUserAdmin(NulSafeListMixin, ActingAdminMixin, UserAdmin):
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""
                             ) -> HttpResponse:
        # Setting someone else's password is taking over their account: step-up, the event
        # names the administrator, and it is written in the password's own transaction.
        return self._acting(request, transaction.atomic(super().user_change_password), id,
                            form_url)


class AuditedGroupAdmin(NulSafeListMixin, ActingAdminMixin, GroupAdmin):
    pass


for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "role", "integration", "valid_until", "granted_by",
                    "granted_at", "revoked_at"]
    list_select_related = ["user", "integration", "granted_by"]  # not three queries a row
    list_filter = ["role", "integration"]
    search_fields = ["user__username", "reason"]
    readonly_fields = [f.name for f in AccessGrant._meta.fields]
