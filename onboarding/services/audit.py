"""The audit log: append-only events chained by an HMAC whose key lives outside the database.

Every event's HMAC covers its own content and the previous event's HMAC, so editing, deleting or
reordering rows breaks the chain at the first altered event. Writers lock one chain-head row, so
concurrent writers never fork the chain; the head also names the newest event, so cutting events
off the end is detected too. Callers write the event inside the transaction of the action it
records: if the event cannot be written, the action rolls back with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from onboarding.models import AuditChainHead, AuditEvent, Integration

GENESIS = "0" * 64


class AuditAction(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOCKOUT = "lockout", "Locked out"
    LOGOUT = "logout", "Signed out"
    INTEGRATION_CREATE = "integration_create", "Integration created"
    PACKAGE_CREATE = "package_create", "Package created"
    PACKAGE_EDIT = "package_edit", "Package edited"
    REVEAL = "reveal", "Secret revealed"
    TOKEN_COPY = "token_copy", "Token copied"
    EXPORT = "export", "Postman export"
    CHECK = "check", "Connectivity check"
    REFRESH = "refresh", "Token refresh"
    PROMOTION = "promotion", "Promotion"
    ROLLBACK = "rollback", "Rollback"
    GRANT = "grant", "Access granted"
    REVOKE = "revoke", "Access revoked"
    PERMISSION_CHANGE = "permission_change", "Permissions changed"
    GROUP_CHANGE = "group_change", "Group membership changed"
    KEY_ROTATION = "key_rotation", "Encryption keys rotated"
    DENIED = "denied", "Production access denied"
    STEP_UP = "step_up", "Password confirmed"
    AUDIT_EXPORT = "audit_export", "Audit log exported"


@dataclass(frozen=True)
class RequestMeta:
    """Who and from where, as far as the request tells: kept apart from HttpRequest so commands
    and services can pass it without a request."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestMeta:
        if request is None:
            return cls()
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a proxy is configured.
        return cls(
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300],
        )


def _canonical(event: AuditEvent) -> bytes:
    content = {
        "seq": event.seq,
        "uuid": str(event.uuid),
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "action": event.action,
        "integration_uuid": str(event.integration_uuid) if event.integration_uuid else None,
        "integration_name": event.integration_name,
        "environment": event.environment,
        "target": event.target,
        "details": event.details,
        "prev_hmac": event.prev_hmac,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sign(event: AuditEvent) -> str:
    key = settings.AUDIT_HMAC_KEY.encode()
    return hmac.new(key, _canonical(event), hashlib.sha256).hexdigest()


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    # Store exactly what the HMAC covers: the JSON round trip fixes dates, UUIDs and tuples.
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder, sort_keys=True))


def audit_record(
    *,
    action: AuditAction | str,
    actor: Any = None,
    meta: RequestMeta | None = None,
    integration: Integration | None = None,
    environment: str = "",
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Never pass a secret value in `target` or `details`."""
    meta = meta or RequestMeta()
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
        event = AuditEvent(
            seq=head.events + 1,
            at=timezone.now(),
            actor_id=getattr(actor, "pk", None),
            actor_name=(actor.get_username() if actor is not None else "system")[:150],
            ip=meta.ip,
            user_agent=meta.user_agent[:300],
            action=str(action),
            integration_uuid=integration.uuid if integration else None,
            integration_name=integration.name if integration else "",
            environment=str(environment or ""),
            target=str(target)[:200],
            details=_jsonable(details),
            prev_hmac=head.last_hmac or GENESIS,
        )
        event.hmac = _sign(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(id=1).update(
            last_event_id=event.pk, last_hmac=event.hmac, events=event.seq
        )
    return event


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    reason: str = ""


def _chain(batch_size: int = 2000) -> Iterator[AuditEvent]:
    # Keyset pagination: constant memory however long the log grows.
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id


def audit_verify() -> AuditVerdict:
    """Walk the whole chain; name the first event whose content, place or link is wrong."""
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    last: AuditEvent | None = None
    for event in _chain():
        if event.seq != expected_seq:
            return AuditVerdict(False, checked, event.id, f"expected position {expected_seq}, "
                                f"found {event.seq}: events were deleted or reordered")
        if event.prev_hmac != expected_prev:
            return AuditVerdict(False, checked, event.id,
                                "does not follow the previous event: the chain was altered")
        if not hmac.compare_digest(event.hmac, _sign(event)):
            return AuditVerdict(False, checked, event.id, "its content was altered")
        expected_prev = event.hmac
        expected_seq += 1
        checked += 1
        last = event
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and head.events != checked:
        return AuditVerdict(False, checked, head.last_event_id,
                            f"the log should hold {head.events} events but holds {checked}: "
                            "the newest events were deleted")
    if head is not None and last is not None and head.last_hmac != last.hmac:
        return AuditVerdict(False, checked, last.id, "the newest event was replaced")
    return AuditVerdict(True, checked)
