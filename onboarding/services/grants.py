"""Time-bound Production grants: create and revoke, each audited in the same transaction.

Who may manage grants: superusers, and users holding Django's own model permissions on
AccessGrant: `onboarding.add_accessgrant` to grant, `onboarding.change_accessgrant` to revoke
(give both to a "grant managers" group). Nobody grants to themselves: a grant is a second
person's decision, so a manager cannot widen their own Production access.

One live grant per user, role and scope: a second one alongside would survive revoking the
first, so "Revoke" on the grant the page names would leave the access in place. The same
manager posting the same grant again within `REPEAT_WINDOW` (a double click, a resent form) gets
the grant just made back, with nothing written; any other grant of a role the user already
holds there is refused, naming the live grant: to change its end, revoke it and grant again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from onboarding.models import AccessGrant, Environment, Integration, Role
from onboarding.services.audit import AuditAction, RequestMeta, audit_record
from onboarding.services.reasons import is_repeat, reason_refusal

GRANT_PERMISSION = "onboarding.add_accessgrant"
REVOKE_PERMISSION = "onboarding.change_accessgrant"
# Production access is time-bound: a year (a leap year's worth) at most, then someone decides
# again. It also keeps the end far from datetime's year 9999, which a time in a zone behind UTC
# overflows on its way to the database (a 500, not a refusal).
MAX_GRANT_DAYS = 366
# Long enough for a double click or a form resent after a slow answer, short enough that a grant
# posted again later is a decision of its own (refused while the first is live, see above).


class GrantError(Exception):
    """A grant change that cannot go ahead; the message is one plain sentence. `field` names
    the input it is about (a form shows the message there), or is None."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _may(user: Any, permission: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active
                and (user.is_superuser or user.has_perm(permission)))


def grant_may_create(*, user: Any) -> bool:
    return _may(user, GRANT_PERMISSION)


def grant_may_revoke(*, user: Any) -> bool:
    return _may(user, REVOKE_PERMISSION)


def _denied(*, actor: Any, meta: RequestMeta | None, attempted: str,
            integration: Integration | None, target: str, refused: str | None = None) -> None:
    # A refused grant change is a denied Production attempt: it goes into the log as well.
    # `refused` says why when it is not the missing permission (names only, never a secret).
    details = {"attempted": attempted, **({"refused": refused} if refused else {})}
    with transaction.atomic():
        audit_record(action=AuditAction.DENIED, actor=actor, meta=meta, integration=integration,
                     environment=Environment.PRODUCTION, target=target, details=details)


@dataclass(frozen=True)
class Granted:
    """What grant_give did: `new` is False when `grant` is the same grant posted again."""

    grant: AccessGrant
    new: bool


def _scope(integration: Integration | None) -> str:
    return f"on {integration.name}" if integration else "on all integrations"


def _live_same(*, user: Any, role: str, integration: Integration | None,
               now: datetime) -> AccessGrant | None:
    """The live grant of `role` to `user` on exactly this scope, if there is one."""
    return (AccessGrant.objects.filter(user=user, role=role, integration=integration,
                                       revoked_at__isnull=True, valid_until__gt=now)
            .select_related("granted_by").order_by("-id").first())


def grant_to_self_refusal(*, user: Any, granted_by: Any, meta: RequestMeta | None = None,
                          integration: Integration | None = None) -> str | None:
    """The refusal of a manager granting to themselves, audited as a denied attempt; None for
    anyone else. The page asks it before checking the rest of the form (a self-grant with an
    empty reason or a mistyped password is still an attempt to widen one's own access)."""
    if user is None or user.pk != granted_by.pk:
        return None
    _denied(actor=granted_by, meta=meta, attempted="grant", integration=integration,
            target=getattr(user, "username", ""), refused="grant to themselves")
    return "You cannot grant Production access to yourself; ask another manager."


def grant_give(
    *,
    user: Any,
    role: Role | str,
    valid_until: datetime,
    reason: str,
    granted_by: Any,
    integration: Integration | None = None,
    meta: RequestMeta | None = None,
) -> Granted:
    """Give `user` one Production role until `valid_until`, on one integration or all; say
    whether a grant was made or the same one posted again found (see the module docstring)."""
    target = getattr(user, "username", "")
    if not grant_may_create(user=granted_by):
        _denied(actor=granted_by, meta=meta, attempted="grant", integration=integration,
                target=target)
        raise GrantError("You may not grant Production access (it needs a superuser or the "
                         f"{GRANT_PERMISSION} permission).")
    # Before the input checks: an attempt to widen one's own access is audited whatever else
    # is wrong with the form.
    refusal = grant_to_self_refusal(user=user, granted_by=granted_by, meta=meta,
                                    integration=integration)
    if refusal:
        raise GrantError(refusal)
    if role not in Role.values:
        raise GrantError(f"Unknown role '{role}'; choose one of {', '.join(Role.values)}.")
    refusal = reason_refusal(reason, what="grant")
    if refusal:
        raise GrantError(refusal, field="reason")
    if timezone.is_naive(valid_until):
        valid_until = timezone.make_aware(valid_until)
    # Aware datetimes compare without converting to UTC, so even year 9999 is safe here.
    now = timezone.now()
    if valid_until <= now:
        raise GrantError("The grant must end in the future.", field="valid_until")
    if valid_until > now + timedelta(days=MAX_GRANT_DAYS):
        raise GrantError(f"A grant can last at most {MAX_GRANT_DAYS} days: choose an earlier "
                         "end, and grant again when it is still needed.", field="valid_until")
    if not user.is_active:
        raise GrantError(f"The account '{user.get_username()}' is deactivated.")
    reason = reason.strip()
    with transaction.atomic():
        # The grantee's row is the lock: of two posts of the same grant arriving together, the
        # second reads the live grants after the first committed its own (on PostgreSQL;
        # SQLite runs one writing transaction at a time anyway).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        live = _live_same(user=user, role=role, integration=integration, now=timezone.now())
        if live is None:
            grant = AccessGrant.objects.create(
                user=user, role=Role(role), integration=integration, valid_until=valid_until,
                reason=reason, granted_by=granted_by,
            )
            audit_record(
                action=AuditAction.GRANT, actor=granted_by, meta=meta, integration=integration,
                environment=Environment.PRODUCTION, target=f"grant #{grant.pk}",
                details={"grant": grant.pk, "user": user.get_username(), "user_id": user.pk,
                         "role": str(role), "valid_until": valid_until,
                         "scope": integration.name if integration else "all integrations",
                         "reason": grant.reason},
            )
            return Granted(grant=grant, new=True)
        if (live.granted_by_id == granted_by.pk and live.valid_until == valid_until
                and is_repeat(done_at=live.granted_at, done_reason=live.reason, reason=reason)):
            return Granted(grant=live, new=False)  # this very grant, posted again
    # Someone grants on purpose what the user already holds: a second live grant would outlive
    # revoking the first, and quietly moving the first one's end would rewrite a decision
    # someone else may have made. Refused, naming the grant to revoke first.
    _denied(actor=granted_by, meta=meta, attempted="grant", integration=integration,
            target=target, refused=f"already holds it as grant #{live.pk}")
    until = timezone.localtime(live.valid_until)
    raise GrantError(
        f"{user.get_username()} already holds {Role(role).value} {_scope(integration)} until "
        f"{until:%Y-%m-%d %H:%M} ({timezone.get_current_timezone_name()}) as grant "
        f"#{live.pk}: nothing was granted. To change its end or reason, revoke grant "
        f"#{live.pk} and grant again.")


def grant_create(
    *,
    user: Any,
    role: Role | str,
    valid_until: datetime,
    reason: str,
    granted_by: Any,
    integration: Integration | None = None,
    meta: RequestMeta | None = None,
) -> AccessGrant:
    """grant_give for callers that need only the grant (`grant_access` prints its number,
    which is the same for the same grant posted again)."""
    return grant_give(user=user, role=role, valid_until=valid_until, reason=reason,
                      granted_by=granted_by, integration=integration, meta=meta).grant


def grant_revoke(*, grant: AccessGrant, revoked_by: Any,
                 meta: RequestMeta | None = None) -> AccessGrant:
    """End a grant now. Revoking an ended grant is refused, so the log never shows it twice."""
    if not grant_may_revoke(user=revoked_by):
        _denied(actor=revoked_by, meta=meta, attempted="revoke", integration=grant.integration,
                target=f"grant #{grant.pk}")
        raise GrantError("You may not revoke Production access (it needs a superuser or the "
                         f"{REVOKE_PERMISSION} permission).")
    now = timezone.now()
    with transaction.atomic():
        # Conditional update: two revokers racing end the grant once.
        ended = AccessGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=revoked_by
        )
        if not ended:
            raise GrantError(f"Grant #{grant.pk} was already revoked.")
        audit_record(
            action=AuditAction.REVOKE, actor=revoked_by, meta=meta,
            integration=grant.integration, environment=Environment.PRODUCTION,
            target=f"grant #{grant.pk}",
            details={"grant": grant.pk, "user": grant.user.get_username(),
                     "user_id": grant.user_id, "role": grant.role,
                     "was_valid_until": grant.valid_until,
                     "expired_already": grant.valid_until <= now},
        )
    grant.refresh_from_db()
    return grant


def grant_find(*, ident: str) -> AccessGrant:
    """A grant by its number or UUID; raises AccessGrant.DoesNotExist."""
    ident = ident.strip().lstrip("#")
    # isdecimal, not isdigit: "²" is a digit to Python but not a number int() reads.
    if ident.isdecimal():
        return AccessGrant.objects.select_related("user", "integration").get(pk=int(ident))
    try:
        key = uuid.UUID(ident)
    except ValueError:
        raise AccessGrant.DoesNotExist(f"no grant {ident}") from None
    return AccessGrant.objects.select_related("user", "integration").get(uuid=key)


def user_find(*, username: str) -> Any:
    """The user so named; raises the user model's DoesNotExist."""
    return get_user_model().objects.get(username=username)
