"""The audit log: append-only events chained by an HMAC whose key lives outside the database.

Every event's HMAC covers its own content and the previous event's HMAC, so editing, deleting or
reordering rows breaks the chain at the first altered event. Writers lock one chain-head row, so
concurrent writers never fork the chain; the head also names the newest event and the count,
under an HMAC of its own, so cutting events off the end is detected too: setting the head back
to an earlier event, or making a new head after emptying the log, needs the key. (Only a copy
of an older head row, kept from a backup, could roll the log back; `verify_audit_log` prints
the head, so a copy of that line kept elsewhere shows such a rollback.) Callers write the event
inside the transaction of the action it records: if the event cannot be written, the action
rolls back with it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, OperationalError, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from onboarding.compiled import CompiledQuery, CompiledUpdate
from onboarding.models import AuditChainHead, AuditEvent, Environment, Integration
from onboarding.services.access import roles
from onboarding.services.fields import FIELD_LABELS

GENESIS = "0" * 64


class AuditAction(models.TextChoices):
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOCKOUT = "lockout", "Locked out"
    LOGOUT = "logout", "Signed out"
    INTEGRATION_CREATE = "integration_create", "Integration created"
    INTEGRATION_EDIT = "integration_edit", "Integration edited"
    INTEGRATION_DELETE = "integration_delete", "Integration deleted"
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
    STEP_UP_FAILED = "step_up_failed", "Password confirmation failed"
    PASSWORD_CHANGE = "password_change", "Password changed"
    AUDIT_EXPORT = "audit_export", "Audit log exported"
    ACCESS_EXPORT = "access_export", "Access report exported"


def audit_action_label(action: str) -> str:
    """An action code in words, as the audit log's filter names it ("reveal": "Secret
    revealed"). Events keep their code (exports, the chain); a code no longer defined is shown
    as it is rather than hidden."""
    try:
        return AuditAction(action).label
    except ValueError:
        return action


# Field names as the pages call them; any other code is shown with its underscores as spaces.
_DETAIL_WORDS = FIELD_LABELS | {"http_status": "HTTP status"}


def audit_details_words(details: dict[str, Any] | None) -> str:
    """An event's details as the audit log page shows them: "changed: client ID, notes;
    copied credentials: yes; previous version: none". Exports keep the JSON. Keys in
    alphabetical order, as written: PostgreSQL's jsonb hands them back in an order of its own."""
    return "; ".join(f"{_detail_word(str(key))}: {_detail_value(value)}"
                     for key, value in sorted((details or {}).items()))


def _detail_word(code: str) -> str:
    return _DETAIL_WORDS.get(code, code.replace("_", " "))


def _detail_value(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_detail_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{_detail_word(str(k))} {_detail_value(v)}"
                         for k, v in sorted(value.items()))
    # A code among the values ("changed": ["client_id"]) reads like the key it names.
    return _detail_word(value) if isinstance(value, str) and value in _DETAIL_WORDS else str(value)


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
        return cls(
            ip=client_ip(request),
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300],
        )


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, for the audit log and django-axes' lockout (AXES_CLIENT_IP_CALLABLE).

    REMOTE_ADDR, unless TRUSTED_PROXY_COUNT says that many proxies of ours stand in front: each
    appends the address it got the request from to X-Forwarded-For, so the client is the entry
    that many places from the right. Entries further left are the client's own to write, and
    never read: trusting them would let anyone pick the address a lockout or an event names."""
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < count or not hops[-count]:
        return remote  # not through the configured proxies: the direct peer is all we know
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote


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


def head_seal(*, events: int, last_event_id: int, last_hmac: str) -> str:
    """The chain head's own HMAC, in a domain of its own: an event's HMAC never passes for it."""
    key = settings.AUDIT_HMAC_KEY.encode()
    message = f"aislekeys-audit-head:{events}:{last_event_id}:{last_hmac}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_values(*, events: int, last_event_id: int, last_hmac: str) -> dict[str, Any]:
    """The chain head's columns after the event `last_event_id`, sealed."""
    return {"events": events, "last_event_id": last_event_id, "last_hmac": last_hmac,
            "seal": head_seal(events=events, last_event_id=last_event_id, last_hmac=last_hmac)}


def _stored_ip(value: str | None) -> str | None:
    """The address exactly as the database keeps it (IPv6 normalised), so the HMAC covers the
    stored value; something that is no address is recorded as unknown, not a failed action."""
    if not value:
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return AuditEvent._meta.get_field("ip").get_prep_value(value)


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    # Store exactly what the HMAC covers: the JSON round trip fixes dates, UUIDs and tuples.
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder, sort_keys=True))


# Every column, in the model's order: Model.from_db takes a full row in that order.
_HEAD_FIELDS = tuple(field.attname for field in AuditChainHead._meta.concrete_fields)

# Every audited action reads and moves the head: compiled once (onboarding/compiled.py), as
# building the two statements again cost more than running them on PostgreSQL.
_locked_head = CompiledQuery(
    lambda: AuditChainHead.objects.select_for_update().filter(id=1).values_list(*_HEAD_FIELDS))
_head_moved = CompiledUpdate(lambda *, events, last_event_id, last_hmac, seal: (
    AuditChainHead.objects.filter(id=1),
    {"events": events, "last_event_id": last_event_id, "last_hmac": last_hmac, "seal": seal}))


def _head_locked() -> AuditChainHead:
    """The chain head, locked until the transaction ends (every writer waits its turn here)."""
    rows = _locked_head.rows()
    if rows:
        return AuditChainHead.from_db(DEFAULT_DB_ALIAS, _HEAD_FIELDS, rows[0])
    # The migrations make the head; a database emptied by hand gets a new one.
    return AuditChainHead.objects.select_for_update().get_or_create(id=1)[0]


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
    # Inside the caller's transaction no savepoint of its own (two statements fewer): if this
    # write fails, the caller's whole action rolls back with it, which is what it must do anyway.
    with transaction.atomic(savepoint=False):
        head = _head_locked()
        event = AuditEvent(
            seq=head.events + 1,
            at=timezone.now(),
            actor_id=getattr(actor, "pk", None),
            actor_name=(actor.get_username() if actor is not None else "system")[:150],
            ip=_stored_ip(meta.ip),
            user_agent=meta.user_agent.replace("\x00", "")[:300],  # no NUL in PostgreSQL
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
        _head_moved.run(
            **head_values(events=event.seq, last_event_id=event.pk, last_hmac=event.hmac))
    return event


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    checked: int
    bad_event_id: int | None = None
    reason: str = ""
    head: AuditChainHead | None = None  # when intact: what to keep a copy of elsewhere


# What reading a row the product did not write can raise: SQLite keeps any value in any column,
# so a uuid or a date typed over by hand fails to convert as the row is read.
_UNREADABLE = (ValueError, TypeError, ArithmeticError, ValidationError)


def row_unreadable(exc: Exception) -> bool:
    """Did reading fail because of the row itself? A value that does not convert (one of
    `_UNREADABLE`), or bytes that are not UTF-8 in a text column, which SQLite keeps and Python's
    driver refuses to read ("Could not decode to UTF-8 column ..."). Any other OperationalError
    (a locked or lost database) is not the row's fault: the caller raises it as it is, never
    reporting it as tampering."""
    if isinstance(exc, OperationalError):
        return "decode" in str(exc).lower()
    return isinstance(exc, _UNREADABLE)


@dataclass(frozen=True)
class UnreadableEvent:
    """A row of the log that cannot be read as an event (a value the log never writes, typed
    over by hand: SQLite keeps any value in any column). Its id is always readable, so pages,
    exports and verification name it instead of ending in a traceback."""

    id: int
    unreadable = True  # for templates: `{% if event.unreadable %}`
    # What pages and exports say of it, in place of the event's content.
    problem = ("This row cannot be read as an event: it was changed outside Aisle Keys. "
               "Run manage.py verify_audit_log.")


AuditRow = AuditEvent | UnreadableEvent


def audit_rows(events: models.QuerySet[AuditEvent], *, batch_size: int = 2000
               ) -> Iterator[AuditRow]:
    """The events in id order (the chain's order: for an intact log, seq order too), in
    batches, with an `UnreadableEvent` in place of a row that cannot be read."""
    # Keyset pagination: constant memory however long the log grows. The first batch has no
    # lower bound: the product never writes an id below 1, but a row inserted by hand with one
    # (say -1, seq 0) would otherwise be shown by the log pages and never read here.
    events = events.order_by("id")
    page = events
    while True:
        batch = audit_page(page[:batch_size])
        if not batch:
            return
        yield from batch
        page = events.filter(id__gt=batch[-1].id)


def audit_page(events: models.QuerySet[AuditEvent]) -> list[AuditRow]:
    """One page of events (a sliced queryset), with an `UnreadableEvent` in place of a row that
    cannot be read: the audit log page lists a tampered log, it does not fail on it."""
    try:
        return list(events)
    except (*_UNREADABLE, OperationalError) as exc:
        if not row_unreadable(exc):
            raise
    # Only a page that failed to read comes here: its ids (plain integers, always readable),
    # then each row alone, to find the ones that cannot be read.
    rows: list[AuditRow] = []
    for event_id in events.values_list("id", flat=True):
        try:
            rows.append(AuditEvent.objects.get(id=event_id))
        except (*_UNREADABLE, OperationalError) as exc:
            if not row_unreadable(exc):
                raise
            rows.append(UnreadableEvent(event_id))
    return rows


def audit_unreadable_ids(events: models.QuerySet[AuditEvent]) -> list[int]:
    """The ids of the rows among `events` that cannot be read as events (a whole walk)."""
    return [row.id for row in audit_rows(events) if isinstance(row, UnreadableEvent)]


def _chain(batch_size: int = 2000) -> Iterator[AuditRow]:
    """Every event in id order, as `audit_verify` walks them."""
    return audit_rows(AuditEvent.objects.all(), batch_size=batch_size)


def _same_digest(stored: Any, expected: str) -> bool:
    """Compare an HMAC read from the database with the one computed, in constant time. As bytes:
    compare_digest refuses str with non-ASCII characters (a TypeError), and a tampered column
    may hold any text, or in SQLite not text at all."""
    if not isinstance(stored, str):
        return False
    return hmac.compare_digest(stored.encode("utf-8", "surrogatepass"), expected.encode())


def _content_intact(event: AuditEvent) -> bool:
    try:
        expected = _sign(event)
    except (*_UNREADABLE, AttributeError):
        # A value the log never writes (`at` that is no date reads back as None): altered.
        return False
    return _same_digest(event.hmac, expected)


def audit_verify() -> AuditVerdict:
    """Walk the whole chain; name the first event whose content, place or link is wrong. The
    head is read first: events written while the walk runs (sign-ins, checks) come after it and
    are counted by the next verification, where reading the head last would have counted one
    event too few and called the log cut. They are still checked now: a row past the head is
    either such an event, chained and signed, or one forged onto the end."""
    try:
        head = AuditChainHead.objects.filter(id=1).first()
    except OperationalError as exc:
        if not row_unreadable(exc):
            raise
        return AuditVerdict(False, 0, None, "the chain head was altered: it cannot be read")
    if head is None:  # made by the migrations, before any event: never deleted by the product
        return AuditVerdict(False, 0, None, "the chain head is missing: the log was "
                            "emptied, or its head deleted")
    sealed = head_seal(events=head.events, last_event_id=head.last_event_id,
                       last_hmac=head.last_hmac)
    if not _same_digest(head.seal, sealed):
        return AuditVerdict(False, 0, head.last_event_id or None,
                            "the chain head was altered: it is not the one the log last wrote")
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    last: AuditEvent | None = None
    for event in _chain():
        if isinstance(event, UnreadableEvent):  # a row that cannot even be read as an event
            return AuditVerdict(False, checked, event.id, "its content was altered")
        # Events past the head (written after it was read) are checked like the rest, only not
        # counted against it: skipping them unchecked let a row forged onto the end pass.
        if event.seq != expected_seq:
            return AuditVerdict(False, checked, event.id, f"expected position {expected_seq}, "
                                f"found {event.seq}: events were deleted or reordered")
        if event.prev_hmac != expected_prev:
            return AuditVerdict(False, checked, event.id,
                                "does not follow the previous event: the chain was altered")
        if not _content_intact(event):
            return AuditVerdict(False, checked, event.id, "its content was altered")
        expected_prev = event.hmac
        expected_seq += 1
        if event.seq <= head.events:
            checked += 1
            last = event
    if head.events != checked:
        return AuditVerdict(False, checked, head.last_event_id or None,
                            f"the log should hold {head.events} events but holds {checked}: "
                            "the newest events were deleted")
    if last is not None and (head.last_hmac != last.hmac or head.last_event_id != last.id):
        return AuditVerdict(False, checked, last.id, "the newest event was replaced")
    return AuditVerdict(True, checked, head=head)


def audit_event_place(*, event_id: int) -> tuple[Any, str] | None:
    """The seq and action of the event `audit_verify` named, as stored (a tampered row may hold
    anything there); None when the row is gone or these two columns cannot be read."""
    try:
        # Only the two columns named: the rest of a tampered row may not read as an event.
        return AuditEvent.objects.filter(pk=event_id).values_list("seq", "action").first()
    except OperationalError as exc:
        if not row_unreadable(exc):
            raise
        return None


# --- Reading and exporting the log ----------------------------------------------------------

EXPORT_FIELDS = ["seq", "at", "actor_id", "actor_name", "ip", "user_agent", "action",
                 "integration_uuid", "integration_name", "environment", "target", "details",
                 "prev_hmac", "hmac"]


def audit_event_row(event: AuditRow) -> dict[str, Any]:
    """One event as plain values (the HMAC included, so an export can be checked later). A row
    that cannot be read keeps its place with empty fields, its id and the problem in `details`:
    the export stays complete, and re-verifying it fails there, as it should."""
    if isinstance(event, UnreadableEvent):
        row: dict[str, Any] = dict.fromkeys(EXPORT_FIELDS)
        row["details"] = {"unreadable_event_id": event.id, "problem": event.problem}
        return row
    row = {name: getattr(event, name) for name in EXPORT_FIELDS}
    # A tampered `at` can read back as no date at all (None, or SQLite's raw value): as stored.
    row["at"] = event.at.isoformat() if isinstance(event.at, datetime) else event.at
    row["integration_uuid"] = str(event.integration_uuid) if event.integration_uuid else None
    return row


def audit_export_record(*, actor: Any, fmt: str, filters: dict[str, Any],
                        meta: RequestMeta | None = None) -> AuditEvent:
    """Record an export of the log (the filters that were set) before any of it is sent: if
    the event cannot be written, nothing leaves."""
    with transaction.atomic():
        return audit_record(action=AuditAction.AUDIT_EXPORT, actor=actor, meta=meta, target=fmt,
                            details={"format": fmt,
                                     "filters": {k: v for k, v in filters.items() if v}})


def _day_start(day: date, *, days_later: int = 0) -> datetime | None:
    """Midnight starting `day` (plus `days_later`) in the site's time zone; None past the
    calendar's ends (year 1 ahead of UTC, the day after 9999-12-31), where no event can be."""
    try:
        start = datetime.combine(day + timedelta(days=days_later), time.min,
                                 tzinfo=timezone.get_current_timezone())
        start.astimezone(UTC)  # what the database is given: raises past the calendar's ends
    except OverflowError:
        return None
    return start


def audit_search(*, actor: str = "", action: str = "", environment: str = "",
                 integration: str = "", since: date | None = None, until: date | None = None
                 ) -> models.QuerySet[AuditEvent]:
    """Events newest first, narrowed by actor name, action, environment, integration name or
    slug, and an inclusive date range (dates in the site's time zone)."""
    events = AuditEvent.objects.order_by("-seq")
    if actor:
        # UPPER(actor_name) = UPPER(%s) on PostgreSQL: served by the audit_actor_upper index.
        events = events.filter(actor_name__iexact=actor.strip())
    if action:
        events = events.filter(action=action)
    if environment:
        events = events.filter(environment=environment)
    if integration:
        integration = integration.strip()
        found = list(Integration.objects.filter(
            models.Q(name__iexact=integration) | models.Q(slug__iexact=integration)
        ).values_list("uuid", flat=True))
        # Events keep the integration's name as it was: a renamed integration's older events
        # match by uuid, a deleted one's only by name. Each side has its own index
        # (audit_integration_upper, integration_uuid), which PostgreSQL ORs as bitmaps.
        events = events.filter(models.Q(integration_name__iexact=integration)
                               | models.Q(integration_uuid__in=found))
    # Dates become a range of instants on `at` (its index serves it), rather than a date cast
    # of every row's `at`: the same days, midnight to midnight in the site's time zone.
    start = _day_start(since) if since else None
    if start is not None:
        events = events.filter(at__gte=start)
    end = _day_start(until, days_later=1) if until else None
    if end is not None:
        events = events.filter(at__lt=end)
    return events


# --- Permission and group-membership changes (called by thin signal receivers) ----------------

# Signals carry no request: whoever makes such changes on behalf of a user (the admin) says who
# is acting for the length of the request, so the events name them instead of "system".
_ACTING: ContextVar[tuple[Any, RequestMeta] | None] = ContextVar("aislekeys_acting", default=None)


@contextmanager
def audit_acting(*, actor: Any, meta: RequestMeta | None = None) -> Iterator[None]:
    token = _ACTING.set((actor, meta or RequestMeta()))
    try:
        yield
    finally:
        _ACTING.reset(token)


def _record_acting(**kwargs: Any) -> None:
    actor, meta = _ACTING.get() or (None, None)
    audit_record(actor=actor, meta=meta, **kwargs)


def _is_production_permission(codename: str) -> bool:
    return codename.endswith("_production")


def audit_membership_change(*, kind: str, instance: Any, action: str, model: type,
                            pk_set: set[int] | None) -> None:
    """Record an m2m change of User.groups, User.user_permissions or Group.permissions.

    `kind` is "groups", "user_permissions" or "group_permissions"; `instance` is the side the
    change was made from (either side works: the event lists both).
    """
    if action == "pre_clear":
        # The cleared rows are gone by post_clear: remember them now.
        manager = _m2m_manager(kind, instance, model)
        instance._aislekeys_cleared = set(manager.values_list("pk", flat=True))
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_aislekeys_cleared", set())
    elif action not in ("post_add", "post_remove"):
        return
    if not pk_set:
        return
    others = model._default_manager.filter(pk__in=pk_set)
    if issubclass(model, Permission):
        others = others.select_related("content_type")  # _label names its app: one query
    others = list(others)
    names = sorted(_label(o) for o in others)
    details: dict[str, Any] = {
        "change": "removed" if action in ("post_remove", "post_clear") else "added"
    }
    if kind == "groups":
        if _is_user(instance):
            details.update(user=_label(instance), groups=names)
            groups = others
        else:
            details.update(group=_label(instance), users=names)
            groups = [instance]
        production = _groups_give_production(groups)
        audit_action = AuditAction.GROUP_CHANGE
    else:
        if hasattr(instance, "codename"):  # changed from the permission's side
            details.update(permission=_label(instance), holders=names)
            production = _is_production_permission(instance.codename)
        else:
            details.update({"user" if _is_user(instance) else "group": _label(instance),
                            "permissions": names})
            production = any(_is_production_permission(o.codename) for o in others)
        audit_action = AuditAction.PERMISSION_CHANGE
    _record_acting(action=audit_action, environment=Environment.PRODUCTION if production else "",
                   target=_label(instance)[:200], details=details)


def _groups_give_production(groups: Any) -> bool:
    """Does any of the groups hold a Production permission? One query for all of them, however
    many were joined or left at once."""
    return any(_is_production_permission(codename) for codename in
               Permission.objects.filter(group__in=groups).values_list("codename", flat=True))


def _is_user(obj: Any) -> bool:
    return hasattr(obj, "get_username")


def _label(obj: Any) -> str:
    if hasattr(obj, "codename"):
        return f"{obj.content_type.app_label}.{obj.codename}"
    if hasattr(obj, "get_username"):
        return obj.get_username()
    return str(getattr(obj, "name", obj))


def _m2m_manager(kind: str, instance: Any, model: type) -> Any:
    if kind == "groups":
        return instance.groups if hasattr(instance, "get_username") else instance.user_set
    if hasattr(instance, "codename"):
        return instance.user_set if kind == "user_permissions" else instance.group_set
    return instance.user_permissions if kind == "user_permissions" else instance.permissions


ACCOUNT_FLAGS = ("is_superuser", "is_active", "is_staff")
# What a save of an account is compared against: its flags, and its name, which every event
# names the account by.
ACCOUNT_WATCHED = (*ACCOUNT_FLAGS, "username")


def audit_account_flags(*, user: Any, before: dict[str, Any] | None) -> None:
    """Superuser status given or taken, an account deactivated or reactivated, staff status
    given or taken: each changes Production access (or, for staff, where it can be used). And
    an account renamed: the log and the access report name accounts by their user name, so
    without the event an old name's actions could not be told as the account's.
    `before` (`ACCOUNT_WATCHED`) is None for a new account (only a new superuser is news)."""
    if before is None:
        before = {"is_superuser": False, "is_active": user.is_active, "is_staff": user.is_staff,
                  "username": user.get_username()}
    if before["username"] != user.get_username():
        _record_acting(action=AuditAction.PERMISSION_CHANGE, environment=_filed_under(user),
                       target=user.get_username(),
                       details={"user": user.get_username(), "change": "renamed",
                                "from": before["username"]})
    if before["is_superuser"] != user.is_superuser:
        _record_acting(action=AuditAction.PERMISSION_CHANGE, environment=Environment.PRODUCTION,
                       target=user.get_username(),
                       details={"user": user.get_username(),
                                "change": "added" if user.is_superuser else "removed",
                                "permissions": ["superuser"]})
    if before["is_active"] != user.is_active:
        _record_acting(action=AuditAction.PERMISSION_CHANGE, target=user.get_username(),
                       details={"user": user.get_username(),
                                "change": "activated" if user.is_active else "deactivated"})
    # Staff status opens the admin, where promotion and rollback are done: for an account with
    # Production roles, it is what lets them promote. Filed under Production for such accounts.
    if before["is_staff"] != user.is_staff:
        _record_acting(action=AuditAction.PERMISSION_CHANGE, environment=_filed_under(user),
                       target=user.get_username(),
                       details={"user": user.get_username(),
                                "change": "added" if user.is_staff else "removed",
                                "permissions": ["staff"]})


def audit_password_set(*, user: Any) -> None:
    """An account's password was set: by its owner, or by an administrator, which is how one
    account could be taken over; recorded under Production when the account holds roles there,
    so the log's Production filter shows it. The access report does not count it as anyone's
    last Production action (access_report.NOT_PRODUCTION_ACTIONS)."""
    _record_acting(action=AuditAction.PASSWORD_CHANGE, environment=_filed_under(user),
                   target=user.get_username(), details={"user": user.get_username()})


def _filed_under(user: Any) -> str:
    """An account event's environment: Production when the account holds roles there, so the
    log's Production filter shows what could change who works in Production; else none."""
    return Environment.PRODUCTION if roles(user=user, environment=Environment.PRODUCTION) else ""


def account_deletion_facts(*, user: Any) -> dict[str, Any]:
    """What deleting `user` takes away, read before the delete: its Production roles (from
    superuser status, permissions and grants alike)."""
    return {"production_roles": sorted(roles(user=user, environment=Environment.PRODUCTION))}


def audit_account_deleted(*, username: str, facts: dict[str, Any] | None) -> None:
    """An account was deleted. Its group memberships, permissions and grants go with it, and
    the database removes those without the signals that record such changes one by one."""
    facts = facts or {"production_roles": []}
    _record_acting(action=AuditAction.PERMISSION_CHANGE,
                   environment=Environment.PRODUCTION if facts["production_roles"] else "",
                   target=username, details={"user": username, "change": "deleted", **facts})


def group_deletion_facts(*, group: Any) -> dict[str, Any]:
    """What deleting `group` takes from its members, read before the delete."""
    return {
        "users": sorted(group.user_set.values_list("username", flat=True)),
        "permissions": sorted(f"{app}.{codename}" for app, codename in group.permissions
                              .values_list("content_type__app_label", "codename")),
    }


def audit_group_renamed(*, group: Any, before: str | None) -> None:
    """A group renamed (`before`: its name before the save; None for a new group). Events name
    groups by their name, so without this one an old name's memberships could not be told as
    the group's (the access report follows it back). Under Production when the group gives
    Production roles."""
    if before is None or before == group.name:
        return
    _record_acting(action=AuditAction.GROUP_CHANGE,
                   environment=Environment.PRODUCTION if _groups_give_production([group]) else "",
                   target=group.name[:200],
                   details={"group": group.name, "change": "renamed", "from": before})


def audit_group_deleted(*, name: str, facts: dict[str, Any] | None) -> None:
    """A group was deleted, and with it every member's permissions through it."""
    facts = facts or {"users": [], "permissions": []}
    production = any(_is_production_permission(p.rsplit(".", 1)[-1])
                     for p in facts["permissions"])
    _record_acting(action=AuditAction.GROUP_CHANGE,
                   environment=Environment.PRODUCTION if production else "", target=name,
                   details={"group": name, "change": "deleted", **facts})


def csv_cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text starting like a formula is quoted, because
    logged text (a user name typed at sign-in) is chosen by whoever typed it."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# Characters that act on a terminal instead of showing: C0 and C1 controls (ESC starts the
# sequences that clear the screen, retitle the window or rewrite earlier lines; a newline forges
# a line of its own) and the invisible bidirectional embeddings, overrides and isolates, which
# show a name spelled backwards. The same characters an integration name may not hold.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_terminal_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS


def terminal_text(value: Any) -> str:
    """`value` safe to print to a terminal: each control character written as its escape (ESC as
    \\x1b, a newline as \\n), because text an administrator or a sign-in form can set (a group
    or user name, a tampered audit row) would otherwise run as terminal commands when a command
    prints it."""
    return "".join(char.encode("unicode_escape").decode("ascii") if is_terminal_control(char)
                   else char for char in str(value))
