"""Admin pages that change who may do what: users, groups, and (read-only) access grants.

Permission and group-membership changes are audited by signal receivers, which see no request;
these admins say who is acting, so the events name the administrator instead of "system". They
also ask for the password again (step-up) before any such page, like every other change of
Production access. Grants are listed read-only: they are made and ended through the grant
service (Production access page, grant_access / revoke_access), which audits them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse

from dashboard.stepup import stepup_is_fresh, stepup_redirect
from onboarding.models import AccessGrant
from onboarding.services.audit import RequestMeta, audit_acting


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (audit events, grants): the admin may look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActingAdminMixin:
    """Run every writing admin view inside `audit_acting`, after a fresh step-up."""

    def _acting(self, request: HttpRequest, view: Any, *args: Any, every_method: bool = True,
                **kwargs: Any) -> HttpResponse:
        # Forms: confirm before filling them in (a redirect would lose a POST). Lists: only
        # their bulk actions (POST) need it.
        if (every_method or request.method == "POST") and not stepup_is_fresh(request):
            return stepup_redirect(request)
        with audit_acting(actor=request.user, meta=RequestMeta.from_request(request)):
            return view(request, *args, **kwargs)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._acting(request, super().changeform_view, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._acting(request, super().changelist_view, *args, every_method=False,
                            **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._acting(request, super().delete_view, *args, **kwargs)


class AuditedUserAdmin(ActingAdminMixin, UserAdmin):
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = ""
                             ) -> HttpResponse:
        # Setting someone else's password is taking over their account: step-up, and the
        # event names the administrator.
        return self._acting(request, super().user_change_password, id, form_url)


class AuditedGroupAdmin(ActingAdminMixin, GroupAdmin):
    pass


for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "role", "integration", "valid_until", "granted_by",
                    "granted_at", "revoked_at"]
    list_filter = ["role", "integration"]
    search_fields = ["user__username", "reason"]
    readonly_fields = [f.name for f in AccessGrant._meta.fields]
