"""Who has Production access, and how: built by asking `roles()` about every user.

The report never re-derives access on its own: the roles shown are exactly what `can()` answers
(a property test holds the two equal). The sources ("superuser", "group X", "permission",
"grant #N until T") only explain where those roles come from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import OuterRef, Subquery, TextChoices
from django.utils import timezone

from onboarding.backends import load_permissions
from onboarding.models import AccessGrant, AuditEvent, Environment, Integration, Role
from onboarding.services.access import (
    PERMISSION_ROLES,
    active_grants,
    load_active_grants,
    permission_codename,
    roles,
)
from onboarding.services.audit import AuditAction, RequestMeta, audit_record

PRODUCTION = Environment.PRODUCTION
ROLE_ORDER = {str(role): n for n, role in enumerate(Role)}
_CODENAMES = {
    permission_codename(role=role, environment=PRODUCTION): str(role)
    for role in PERMISSION_ROLES[PRODUCTION]
}


# How permission-change events name these permissions (audit._label of a Permission).
_PRODUCTION_PERMISSION_LABELS = {f"onboarding.{codename}" for codename in _CODENAMES}


def sorted_roles(values: Any) -> list[str]:
    return sorted(values, key=lambda r: ROLE_ORDER.get(r, 99))


class SourceKind(TextChoices):
    SUPERUSER = "superuser", "Superuser"
    GROUP = "group", "Group"
    PERMISSION = "permission", "Permission"
    GRANT = "grant", "Grant"


# A source the audit log has no record of giving (access given before the log began, or
# written to the database past the application): who gave it, and when, is unknown.
UNKNOWN = "—"


@dataclass(frozen=True)
class AccessSource:
    """One reason a user holds Production roles."""

    kind: SourceKind
    label: str
    roles: tuple[str, ...]
    integration: str = "all integrations"
    granted_by: str = ""
    granted_at: datetime | None = None
    valid_until: datetime | None = None
    grant: AccessGrant | None = None

    @property
    def granter(self) -> str:
        """Who gave this source, as the page and the exports both say it: a grant whose
        granter's account was deleted says so."""
        if self.granted_by:
            return self.granted_by
        return "(deleted user)" if self.kind == SourceKind.GRANT else UNKNOWN


@dataclass
class AccessRow:
    user_id: int
    username: str
    everywhere: set[str]  # roles on every integration
    by_integration: dict[Integration, set[str]] = field(default_factory=dict)
    sources: list[AccessSource] = field(default_factory=list)
    last_action: AuditEvent | None = None

    def roles_on(self, integration: Integration | None) -> set[str]:
        """The Production roles on one integration (None: those that hold on all of them)."""
        if integration is None:
            return set(self.everywhere)
        return set(self.by_integration.get(integration, self.everywhere))

    @property
    def everywhere_sorted(self) -> list[str]:
        return sorted_roles(self.everywhere)

    @property
    def scoped(self) -> list[tuple[Integration, list[str]]]:
        return [(i, sorted_roles(r))
                for i, r in sorted(self.by_integration.items(), key=lambda kv: kv[0].name)]

    def as_dict(self) -> dict[str, Any]:
        """A flat, export-friendly view (CSV, JSON): names and times, never secrets."""
        last = self.last_action
        return {
            "user": self.username,
            "roles": " ".join(sorted_roles(self.everywhere)),
            "integration_roles": "; ".join(
                f"{i.name}: {' '.join(sorted_roles(r))}"
                for i, r in sorted(self.by_integration.items(), key=lambda kv: kv[0].name)
            ),
            # One entry per source in each of these three, in the same order, so the nth
            # granter and time belong to the nth way in: a granter is never left out or merged.
            "how": "; ".join(s.label for s in self.sources),
            "granted_by": "; ".join(s.granter for s in self.sources),
            "granted_at": "; ".join(s.granted_at.isoformat() if s.granted_at else UNKNOWN
                                    for s in self.sources),
            "last_production_action": last.action if last else "",
            "last_production_action_at": last.at.isoformat() if last else "",
        }


def _sources(user: Any, grants: list[Any]) -> list[AccessSource]:
    found: list[AccessSource] = []
    if user.is_superuser:
        found.append(AccessSource(SourceKind.SUPERUSER, "superuser",
                                  tuple(str(r) for r in PERMISSION_ROLES[PRODUCTION])))
    for group in sorted(user.groups.all(), key=lambda g: g.name):
        held = {_CODENAMES[p.codename] for p in group.permissions.all()
                if p.content_type.app_label == "onboarding" and p.codename in _CODENAMES}
        if held:
            found.append(AccessSource(SourceKind.GROUP, f"group {group.name}",
                                      tuple(sorted_roles(held))))
    direct = {_CODENAMES[p.codename] for p in user.user_permissions.all()
              if p.content_type.app_label == "onboarding" and p.codename in _CODENAMES}
    if direct:
        found.append(AccessSource(SourceKind.PERMISSION, "permission", tuple(sorted_roles(direct))))
    for grant in sorted(grants, key=lambda g: g.pk):
        until = timezone.localtime(grant.valid_until).strftime("%Y-%m-%d %H:%M %Z")
        found.append(AccessSource(
            SourceKind.GRANT, f"grant #{grant.pk} until {until}", (grant.role,),
            integration=grant.integration.name if grant.integration_id else "all integrations",
            granted_by=grant.granted_by.get_username() if grant.granted_by_id else "",
            granted_at=grant.granted_at, valid_until=grant.valid_until, grant=grant,
        ))
    return found


@dataclass(frozen=True)
class _NameSpan:
    """A name an account (or a group) held, between two audit events (by seq): its rename to
    it, or from the start of the log, until its rename away, or for good."""

    name: str
    holder: str  # the account's (the group's) current name
    since: float
    until: float


# Rename events, by what they rename: accounts (filed as permission changes) and groups.
_RENAMED = {AuditAction.PERMISSION_CHANGE: "user", AuditAction.GROUP_CHANGE: "group"}


def _renames() -> dict[str, list[tuple[int, str, str]]]:
    """(seq, old name, new name) of every rename, newest first, of accounts ("user") and of
    groups ("group"). One query, for the rename events alone (the log's other events are not
    read twice)."""
    found: dict[str, list[tuple[int, str, str]]] = {key: [] for key in _RENAMED.values()}
    for seq, action, details in AuditEvent.objects.filter(
            action__in=list(_RENAMED), details__change="renamed",
    ).order_by("-seq").values_list("seq", "action", "details"):
        key = _RENAMED[action]
        if details.get("from") and details.get(key):
            found[key].append((seq, details["from"], details[key]))
    return found


def _name_spans(current: set[str], renames: list[tuple[int, str, str]]
                ) -> dict[str, list[_NameSpan]]:
    """The names each account (or group) held, from the `_renames` back from its current
    name: an event naming an old name is then credited to the one that held the name at the
    time, not lost after a rename nor given to a later one that took the name."""
    by_name: dict[str, list[_NameSpan]] = {}
    for name in current:
        span = _NameSpan(name=name, holder=name, since=0, until=math.inf)
        # Back along its renames: each one ends the name before it.
        for seq, old, new in renames:
            if new == span.name and seq < span.until:
                by_name.setdefault(span.name, []).append(replace(span, since=seq))
                span = _NameSpan(name=old, holder=name, since=0, until=seq)
        by_name.setdefault(span.name, []).append(span)
    return by_name


def _holder(spans: dict[str, list[_NameSpan]], name: str, seq: int) -> str | None:
    """Who held `name` at event `seq`. Names are unique at any one time, so of two spans that
    both reach back to the start of the log, the one that ends first is the earlier holder."""
    holding = [span for span in spans.get(name, ()) if span.since <= seq < span.until]
    return min(holding, key=lambda span: span.until).holder if holding else None


def _added_by(rows: list[AccessRow]) -> dict[tuple[str, str], AuditEvent]:
    """(user name, source label) → the newest audit event that gave it, for the sources the
    database itself does not date (superuser, group, permission)."""
    renames = _renames()
    spans = _name_spans({row.username for row in rows}, renames["user"])
    groups = _name_spans({s.label.removeprefix("group ") for row in rows for s in row.sources
                          if s.kind == SourceKind.GROUP}, renames["group"])
    names = set(spans) | set(groups)  # every name the accounts and groups held
    found: dict[tuple[str, str], AuditEvent] = {}
    events = AuditEvent.objects.filter(
        action__in=[AuditAction.GROUP_CHANGE, AuditAction.PERMISSION_CHANGE], target__in=names,
    ).order_by("seq")
    for event in events.iterator():
        details = event.details
        if details.get("change") != "added":
            continue
        if event.action == AuditAction.GROUP_CHANGE:
            joined = ([(details["user"], g) for g in details.get("groups", [])]
                      if "user" in details else
                      [(u, details.get("group")) for u in details.get("users", [])])
            # Each group as it is called now: the event names it as it was called then.
            pairs = [(user, f"group {group}") for user, name in joined
                     if (group := _holder(groups, name, event.seq)) is not None]
        elif "user" in details:
            added = details.get("permissions") or []
            if added == ["superuser"]:
                pairs = [(details["user"], "superuser")]
            elif any(name in _PRODUCTION_PERMISSION_LABELS for name in added):
                pairs = [(details["user"], "permission")]
            else:
                # Only a Production permission explains Production access: a later Sandbox
                # one given by someone else must not take the credit for it.
                continue
        else:
            continue
        for name, label in pairs:
            holder = _holder(spans, name, event.seq)  # the account as it is called now
            if holder is not None:
                found[(holder, label)] = event  # ascending order: the newest one wins
    return found


# Production events that are no Production action of their actor's: a refusal (nothing was
# done), and a password change of an account holding Production roles, filed under Production
# so the log's filter shows an auditor what could lead to a Production account's takeover, but
# an account's own business, not work in Production.
NOT_PRODUCTION_ACTIONS = (AuditAction.DENIED, AuditAction.PASSWORD_CHANGE)


def _last_actions(user_ids: list[int]) -> dict[int, AuditEvent]:
    """Each user's newest Production event, leaving out those in NOT_PRODUCTION_ACTIONS.

    One index probe per user (the audit_production_actions partial index, read backwards from
    the newest seq) instead of grouping every Production event the users ever made."""
    newest = AuditEvent.objects.filter(environment=PRODUCTION, actor_id=OuterRef("pk"))
    # One `action <> ...` each, rather than NOT IN: plainly within the index's own condition.
    for action in NOT_PRODUCTION_ACTIONS:
        newest = newest.exclude(action=action)
    newest = newest.order_by("-seq").values("seq")[:1]
    seqs = (get_user_model().objects.filter(pk__in=user_ids)
            .annotate(last_seq=Subquery(newest)).values("last_seq"))
    return {e.actor_id: e for e in AuditEvent.objects.filter(seq__in=seqs)}


def access_report() -> list[AccessRow]:
    """Every user for whom `can()` allows some Production action, by user name."""
    users = list(
        get_user_model().objects.filter(is_active=True).order_by("username")
        .prefetch_related("groups__permissions__content_type",
                          "user_permissions__content_type")
    )
    # What roles() reads for each user, read for all of them at once: the report costs the same
    # few queries for a team of five or of five hundred.
    load_permissions(users=users)
    load_active_grants(users=users)
    rows: list[AccessRow] = []
    for user in users:
        everywhere = roles(user=user, environment=PRODUCTION)
        grants = active_grants(user=user)
        by_integration = {}
        for integration in {g.integration for g in grants if g.integration_id is not None}:
            held = roles(user=user, environment=PRODUCTION, integration=integration)
            if held != everywhere:
                by_integration[integration] = held
        if not everywhere and not by_integration:
            continue
        rows.append(AccessRow(user_id=user.pk, username=user.get_username(),
                              everywhere=everywhere, by_integration=by_integration,
                              sources=_sources(user, grants)))
    last = _last_actions([row.user_id for row in rows])
    added = _added_by(rows)
    for row in rows:
        row.last_action = last.get(row.user_id)
        row.sources = [
            replace(s, granted_by=event.actor_name or "system", granted_at=event.at)
            if s.kind != SourceKind.GRANT and (event := added.get((row.username, s.label))) else s
            for s in row.sources
        ]
    return rows


REPORT_COLUMNS = ["user", "roles", "integration_roles", "how", "granted_by", "granted_at",
                  "last_production_action", "last_production_action_at"]


def access_report_export_record(*, actor: Any, meta: RequestMeta | None = None) -> AuditEvent:
    """Record a download of the report before any of it is sent (a copy of who holds Production
    access leaves the site), as `audit_export_record` does for the log: if the event cannot be
    written, nothing leaves. No environment: reading the report is no Production action of the
    auditor's (the report's "last Production action" column would otherwise show it)."""
    with transaction.atomic():
        return audit_record(action=AuditAction.ACCESS_EXPORT, actor=actor, meta=meta,
                            target="csv", details={"format": "csv"})
