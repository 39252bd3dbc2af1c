"""The one lookup helper every dashboard view goes through.

Outsiders (who may not even view) get 404, so object ids reveal nothing; users who may view but
not act get 403. Denied Production attempts are written to the audit log.
"""

from __future__ import annotations

from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from onboarding.models import Environment, Integration, OnboardingPackage, Role
from onboarding.services.access import can, roles, visible_integrations
from onboarding.services.audit import AuditAction, RequestMeta, audit_record


def deny(request: HttpRequest, *, action: Role | str, environment: Environment | str,
         integration: Integration | None, target: str = "") -> PermissionDenied:
    """Audit a refused Production action and return the exception to raise."""
    if Environment(environment) == Environment.PRODUCTION:
        with transaction.atomic():
            audit_record(action=AuditAction.DENIED, actor=request.user,
                         meta=RequestMeta.from_request(request), integration=integration,
                         environment=environment, target=target or str(action),
                         details={"attempted": str(action), "path": request.path[:200]})
    return PermissionDenied(f"You may not {action} in {Environment(environment).label}.")


def integration_for(request: HttpRequest, *, uuid: UUID,
                    environment: Environment | str | None = None) -> Integration:
    """An integration the user may view in `environment` (None: in some environment), or 404,
    as for a package: a page about one environment is nobody's business who may not view it."""
    integration = get_object_or_404(visible_integrations(user=request.user), uuid=uuid)
    if environment is not None and not can(user=request.user, action=Role.VIEW,
                                           environment=environment, integration=integration):
        raise Http404("No such integration.")
    return integration


def package_for(request: HttpRequest, *, uuid: UUID, action: Role | str = Role.VIEW
                ) -> OnboardingPackage:
    """A package the user may view (else 404) and may do `action` on (else 403)."""
    package = get_object_or_404(
        OnboardingPackage.objects.select_related("integration", "current_version"), uuid=uuid
    )
    user = request.user
    if not can(user=user, action=Role.VIEW, environment=package.environment,
               integration=package.integration):
        raise Http404("No such package.")
    if not can(user=user, action=action, environment=package.environment,
               integration=package.integration):
        raise deny(request, action=action, environment=package.environment,
                   integration=package.integration, target=str(package.uuid))
    return package


def require_for(request: HttpRequest, *, action: Role | str, environment: Environment | str,
                integration: Integration) -> None:
    """403 (audited for Production) unless the user may do `action` here."""
    if not can(user=request.user, action=action, environment=environment,
               integration=integration):
        raise deny(request, action=action, environment=environment, integration=integration)


def require_oversight(request: HttpRequest, *, permission: str) -> None:
    """The access report and the audit log: superusers and holders of `permission` only.

    Like every other lookup, someone with no role at all learns nothing (404); someone who
    works here but lacks the permission is told so (403).
    """
    user = request.user
    if user.is_active and (user.is_superuser or user.has_perm(permission)):
        return
    if not any(roles(user=user, environment=env) for env in Environment) and not (
        visible_integrations(user=user).exists()
    ):
        raise Http404("No such page.")
    raise PermissionDenied("Only auditors and administrators may see this page.")
