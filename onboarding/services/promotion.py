"""Promotion of a verified Sandbox configuration to Production, and Production rollback.

Both write a new Production version (history is never rewritten), a `Promotion` record and an
audit event in one transaction per integration. Guards are evaluated by the preview for the
confirmation page and again, under the package locks, when applying: a refused integration
changes nothing. Secrets are compared, never shown: diffs carry field names and a status only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import TextChoices
from django.utils import timezone

from onboarding.iqmetrix import Outcome
from onboarding.models import (
    CheckKind,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    Promotion,
    PromotionKind,
    Role,
    VersionSource,
)
from onboarding.services.access import active_grants, can
from onboarding.services.audit import AuditAction, RequestMeta, audit_record
from onboarding.services.fields import field_label
from onboarding.services.packages import (
    COMPARED_FIELDS,
    UNKNOWN,
    UNREADABLE,
    VersionRow,
    package_versions,
    version_create,
    version_value,
    version_values,
)
from onboarding.services.reasons import is_repeat, reason_refusal

DIFF_FIELDS = COMPARED_FIELDS  # every field of a version, credentials first


class DiffStatus(TextChoices):
    CHANGED = "changed", "changed"
    UNCHANGED = "unchanged", "unchanged"
    NEW = "new", "new"
    # A value that goes, of a field that is no secret (a secret's emptiness is never told).
    CLEARED = "cleared", "cleared"
    # Only on the confirmation page (see preview_diff); a stored diff says "unchanged".
    NOT_SET = "not-set", "not set"


NO_CREDENTIALS_CHOICE = ("No credentials choice was made for it (keep Production's or copy "
                         "Sandbox's): review the promotion again.")


class PromotionRefused(Exception):
    """The promotion or rollback did not go ahead; `reasons` are plain sentences."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__(" ".join(self.reasons))


@dataclass(frozen=True)
class GuardVerdict:
    ok: bool
    sentence: str


@dataclass(frozen=True)
class PromotionPreview:
    """What the confirmation page shows for one integration."""

    integration: Integration
    verdicts: list[GuardVerdict]
    sandbox_version: PackageVersion | None
    production_version: PackageVersion | None
    production_has_credentials: bool
    diff_keep: list[dict[str, str]] = field(default_factory=list)
    diff_copy: list[dict[str, str]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """The sentences of the guards that refuse (empty when promotion may go ahead)."""
        return [v.sentence for v in self.verdicts if not v.ok]

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def sandbox_version_number(self) -> int | None:
        return self.sandbox_version.number if self.sandbox_version else None

    @property
    def sandbox_version_uuid(self) -> UUID | None:
        return self.sandbox_version.uuid if self.sandbox_version else None

    @property
    def production_version_uuid(self) -> UUID | None:
        return self.production_version.uuid if self.production_version else None

    @property
    def keep_note(self) -> str:
        """What keeping Production's credentials leaves it with, when it is not all four."""
        if self.production_has_credentials:
            return ""
        held = self.production_version is not None and any(
            self.production_version.__dict__.get(name) is not None
            for name in PackageVersion.CREDENTIAL_FIELDS)
        if held:
            return "Production's are incomplete: it will stay “credentials missing”"
        return "Production has none yet: it will stay “credentials missing”"

    @property
    def default_credentials(self) -> str:
        """Sandbox and Production are separate iQmetrix accounts: keep Production's own."""
        return "keep" if self.production_has_credentials else "copy"

    @property
    def diff_rows(self) -> list[dict[str, str]]:
        """One row per field with its status under either credentials choice: the status code
        (for a class name) and its words."""
        return [
            {"field": keep["field"], "label": field_label(keep["field"], capitalised=True),
             "keep": keep["status"], "keep_words": DiffStatus(keep["status"]).label,
             "copy": copy["status"], "copy_words": DiffStatus(copy["status"]).label}
            for keep, copy in zip(self.diff_keep, self.diff_copy, strict=True)
        ]


def _blank(value: Any) -> bool:
    return value is None or value == ""


def field_diff(*, before: PackageVersion | None, after: dict[str, Any]) -> list[dict[str, str]]:
    """[{field, status}] of `after` against `before`. Against a version, secrets are never
    "new", only changed; with no version at all, every field that gets a value is new."""
    rows = []
    for name in DIFF_FIELDS:
        old, new = version_value(before, name), after.get(name)
        readable = old is not UNKNOWN and new is not UNKNOWN
        if readable and (old == new or (_blank(old) and _blank(new))):
            status = DiffStatus.UNCHANGED
        # "new" for a secret of an existing version would tell whoever reads the diff (the
        # confirmation page, the history) that the stored secret is empty. Without a version
        # nothing is stored to tell about, and "changed" would claim there was a value before.
        elif _blank(old) and not _blank(new) and (
                before is None or name not in PackageVersion.SECRET_FIELDS):
            status = DiffStatus.NEW
        elif readable and _blank(new) and name not in PackageVersion.SECRET_FIELDS:
            status = DiffStatus.CLEARED  # "changed" would not say that the value goes
        else:
            status = DiffStatus.CHANGED
        rows.append({"field": name, "status": str(status)})
    return rows


def preview_diff(*, before: PackageVersion | None, after: dict[str, Any]
                 ) -> list[dict[str, str]]:
    """field_diff in the confirmation page's words: a field that stays empty is "not set", as
    "unchanged" would claim there is a value to keep (with no Production version, there is
    nothing at all). A secret of an existing version stays "unchanged", for the reason it is
    never "new": "not set" would tell the reader that the stored secret is empty."""
    rows = field_diff(before=before, after=after)
    for row in rows:
        name = row["field"]
        if (row["status"] == DiffStatus.UNCHANGED and _blank(after.get(name))
                and (before is None or name not in PackageVersion.SECRET_FIELDS)):
            row["status"] = str(DiffStatus.NOT_SET)
    return rows


def _has_credentials(version: PackageVersion | None) -> bool:
    return version is not None and version.has_credentials


def _proposed(*, sandbox: PackageVersion, production: PackageVersion | None,
              copy_credentials: bool) -> dict[str, Any]:
    """Configuration from Sandbox; credentials from Sandbox if asked, else Production's own."""
    values = {name: version_value(sandbox, name) for name in PackageVersion.CONFIG_FIELDS}
    source = sandbox if copy_credentials else production
    values.update({name: version_value(source, name) for name in PackageVersion.CREDENTIAL_FIELDS})
    return values


def _unreadable(values: dict[str, Any], *, where: str) -> list[str]:
    return [
        f"{where}'s {name.replace('_', ' ')} {UNREADABLE}; enter it again first."
        for name, value in values.items() if value is UNKNOWN
    ]


# ---- guards ---------------------------------------------------------------------------------

def _age_words(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} hours"


def _check_verdict(sandbox: PackageVersion, *, now: Any) -> GuardVerdict:
    """The newest token exchange of the current Sandbox version passed recently enough."""
    label = f"Sandbox v{sandbox.number}"
    last = (ConnectivityCheck.objects.filter(version=sandbox, kind=CheckKind.PASSWORD)
            .defer("access_token", "refresh_token").order_by("-sent_at", "-id").first())
    if last is None:
        return GuardVerdict(False, f"{label} has never passed a connectivity check: "
                                   "run a check first.")
    if not last.ok:
        outcome = Outcome(last.outcome).label if last.outcome in Outcome.values else last.outcome
        return GuardVerdict(False, f"The last check of {label} did not pass ({outcome}): "
                                   "fix it and check again.")
    max_age = settings.PROMOTION_MAX_CHECK_AGE
    age = now - last.sent_at
    if age > max_age:
        return GuardVerdict(False, f"The last passing check of {label} is {_age_words(age)} "
                                   f"old; promotion needs one from the last "
                                   f"{_age_words(max_age)}: check again.")
    # The confirmation is a server-rendered admin page, so the time is in TIME_ZONE: name it.
    return GuardVerdict(True, f"{label} passed a connectivity check at "
                              f"{timezone.localtime(last.sent_at):%Y-%m-%d %H:%M} "
                              f"({timezone.get_current_timezone_name()}).")


def _permission_verdict(*, actor: Any, integration: Integration) -> GuardVerdict:
    if actor is None or not can(user=actor, action=Role.PROMOTE,
                                environment=Environment.PRODUCTION, integration=integration):
        return GuardVerdict(False, "You may not promote this integration to Production.")
    # Says which guard passed, not "you may promote": it sits among the other guards, any
    # of which may still refuse.
    return GuardVerdict(True, "You hold the promote role for this integration.")


def _audit_if_denied(*, actor: Any, integration: Integration, meta: RequestMeta | None,
                     attempted: str) -> None:
    """A refused Production attempt is recorded on its own, apart from the change it refuses
    (which writes nothing), so the admin, the dashboard and the commands all leave a trace."""
    if actor is not None and not _permission_verdict(actor=actor, integration=integration).ok:
        with transaction.atomic():
            audit_record(action=AuditAction.DENIED, actor=actor, meta=meta,
                         integration=integration, environment=Environment.PRODUCTION,
                         target=attempted, details={"attempted": attempted})


def _guards(*, integration: Integration, actor: Any, sandbox: PackageVersion | None
            ) -> list[GuardVerdict]:
    verdicts = [_permission_verdict(actor=actor, integration=integration)]
    if sandbox is None:
        verdicts.append(GuardVerdict(False, "Sandbox has no package yet: onboard Sandbox and "
                                            "check it first."))
    else:
        verdicts.append(_check_verdict(sandbox, now=timezone.now()))
    return verdicts


def _current(integration: Integration, environment: Environment, *, lock: bool = False
             ) -> tuple[OnboardingPackage | None, PackageVersion | None]:
    queryset = OnboardingPackage.objects.filter(integration=integration, environment=environment)
    if lock:
        # The version is read after the lock, in a query of its own: a row joined to the locked
        # one comes from the snapshot taken before waiting for the lock, so the version written
        # by the transaction we waited for would be missing (None, on PostgreSQL).
        package = queryset.select_for_update().first()
    else:
        package = queryset.select_related("current_version").first()
    return package, (package.current_version if package else None)


def promotion_offered(*, user: Any) -> bool:
    """Whether to offer promotion at all: the user may promote some integration (a grant may
    name just one). Each integration is still checked on its own."""
    if can(user=user, action=Role.PROMOTE, environment=Environment.PRODUCTION):
        return True
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return any(grant.role == Role.PROMOTE for grant in active_grants(user=user))


# ---- preview --------------------------------------------------------------------------------

def promotion_preview(*, integration: Integration, actor: Any) -> PromotionPreview:
    """Guard verdicts and the diff under both credentials choices; reads only."""
    _, sandbox = _current(integration, Environment.SANDBOX)
    _, production = _current(integration, Environment.PRODUCTION)
    verdicts = _guards(integration=integration, actor=actor, sandbox=sandbox)
    preview = PromotionPreview(
        integration=integration, verdicts=verdicts, sandbox_version=sandbox,
        production_version=production, production_has_credentials=_has_credentials(production),
    )
    if sandbox is not None:
        for copy, target in ((False, preview.diff_keep), (True, preview.diff_copy)):
            proposed = _proposed(sandbox=sandbox, production=production, copy_credentials=copy)
            target.extend(preview_diff(before=production, after=proposed))
    return preview


# ---- apply ----------------------------------------------------------------------------------

def _production_package_locked(integration: Integration) -> OnboardingPackage:
    """The Production slot, created if missing, locked for this transaction."""
    try:
        with transaction.atomic():  # a savepoint: a lost creation race must not poison us
            package, _ = OnboardingPackage.objects.get_or_create(
                integration=integration, environment=Environment.PRODUCTION)
    except IntegrityError:
        # Another transaction created it between our read and insert: use theirs.
        package = OnboardingPackage.objects.get(
            integration=integration, environment=Environment.PRODUCTION)
    # No select_related: the current version is read after the lock (see _current).
    return OnboardingPackage.objects.select_for_update().get(pk=package.pk)


def _changed_since_review(label: str, *, current: PackageVersion | None,
                          reviewed: UUID | str | None) -> list[str]:
    """A refusal when the confirmation showed another version of `label` than `current`.

    `reviewed` is the uuid of the version shown, or "none" when there was none; None (a caller
    without a review step) skips the check."""
    if not reviewed or str(reviewed) == str(current.uuid if current else "none"):
        return []
    now = f"it is now v{current.number}" if current else "it has no version now"
    return [f"{label} changed since you reviewed it ({now}): review the promotion again."]


def _reason_or_refuse(reason: str | None, reasons: list[str], *, what: str) -> str:
    refusal = reason_refusal(reason, what=what)
    if refusal:
        reasons.append(refusal)
    return (reason or "").strip()


def promotion_apply(
    *,
    integration: Integration,
    actor: Any,
    reason: str,
    copy_credentials: bool | None,
    reviewed_sandbox_version: UUID | str | None,
    reviewed_production_version: UUID | str | None,
    meta: RequestMeta | None = None,
) -> Promotion:
    """Copy the current Sandbox configuration (and credentials if asked) into a new Production
    version. Raises PromotionRefused, with every reason, before writing anything.

    The reviewed versions are what the confirmation showed (a uuid, or "none"): the choices made
    there, above all keeping or copying credentials, only hold for those versions, so a change
    of either side since refuses. None skips that side's check (no review step).
    `copy_credentials` None means nobody chose (the confirmation offers no choice for an
    integration it shows as refused): refused too, even if the guards pass by now. The one
    exception is the caller's own promotion of that very Sandbox version over that very
    Production version with the same credentials choice, which is what a second click or a
    resent confirmation finds: it is returned as done, with no second version or event (as
    rollback_apply does), rather than refused with a sentence that would invite promoting
    again."""
    _audit_if_denied(actor=actor, integration=integration, meta=meta, attempted="promote")
    with transaction.atomic():
        # Lock Sandbox first (package_store locks it too), so it cannot change between the
        # guards and the copy; every path that locks both takes Sandbox before Production.
        _, sandbox = _current(integration, Environment.SANDBOX, lock=True)
        reasons = [v.sentence for v in _guards(integration=integration, actor=actor,
                                                sandbox=sandbox) if not v.ok]
        if sandbox is not None:  # no Sandbox at all is the guards' "has no package yet"
            reasons += _changed_since_review("Sandbox", current=sandbox,
                                             reviewed=reviewed_sandbox_version)
        if copy_credentials is None and not reasons:
            # Said only when nothing else refuses: the guards' own sentences say more.
            reasons.append(NO_CREDENTIALS_CHOICE)
        # Locked before any refusal, so every reason shows at once; a refusal rolls the
        # Production slot's creation back with it.
        package = _production_package_locked(integration)
        previous = package.current_version  # read under the lock: the version we replace
        changed = _changed_since_review("Production", current=previous,
                                        reviewed=reviewed_production_version)
        no_reason: list[str] = []
        reason = _reason_or_refuse(reason, no_reason, what="promotion")
        if (changed and not reasons and not no_reason and sandbox is not None
                and previous is not None):
            # Read under the lock, so of two identical posts the second sees the first's result.
            repeat = _repeated_promotion(current=previous, actor=actor, sandbox=sandbox,
                                         reviewed_production=reviewed_production_version,
                                         copy_credentials=copy_credentials)
            if repeat is not None and is_repeat(done_at=repeat.performed_at,
                                                done_reason=repeat.reason, reason=reason):
                return repeat
        reasons += changed + no_reason
        if reasons or sandbox is None:
            raise PromotionRefused(reasons)
        values = _proposed(sandbox=sandbox, production=previous, copy_credentials=copy_credentials)
        refusals = _unreadable(values, where="Sandbox" if copy_credentials else "Production")
        if refusals:
            raise PromotionRefused(refusals)
        return _production_write(
            kind=PromotionKind.PROMOTION, integration=integration, package=package,
            source=sandbox, previous=previous, values=values, reason=reason, actor=actor,
            meta=meta, copied_credentials=copy_credentials,
            details={"sandbox_version": sandbox.number, "copied_credentials": copy_credentials},
        )


def _repeated_promotion(*, current: PackageVersion, actor: Any, sandbox: PackageVersion,
                        reviewed_production: UUID | str | None, copy_credentials: bool
                        ) -> Promotion | None:
    """The promotion that made `current`, if it is this very request made before: by `actor`,
    of the current Sandbox version, over the Production version they reviewed, with the same
    credentials choice. Someone else's identical promotion is not theirs to claim (as in
    _repeated_rollback): they are told Production changed."""
    promotions = Promotion.objects.filter(
        new_version=current, kind=PromotionKind.PROMOTION, performed_by=actor,
        source_version=sandbox, copied_credentials=copy_credentials)
    if str(reviewed_production) == "none":
        promotions = promotions.filter(previous_version__isnull=True)
    else:
        try:
            promotions = promotions.filter(previous_version__uuid=UUID(str(reviewed_production)))
        except ValueError:  # not a version's uuid: no promotion was made over it
            return None
    return promotions.select_related("source_version", "new_version").first()


def rollback_apply(
    *,
    integration: Integration,
    actor: Any,
    to_version_number: int,
    reason: str,
    reviewed_current: int | None = None,
    meta: RequestMeta | None = None,
) -> Promotion:
    """Write a new Production version equal to an earlier one. Raises PromotionRefused.

    `reviewed_current` is the number of the Production version the form showed as current: the
    choice of version to go back to was made against it, so if another version became current
    since (a promotion, someone else's rollback) it refuses. The one exception is the caller's
    own rollback from that very version to that very target, which is what a second click or a
    resent form finds: it is returned as done, with no second version or event (as a
    double-clicked Save is by package_store), rather than refused with a sentence that would
    invite rolling back again. None skips the check, for callers that state their target
    outright rather than pick it from a page (the `rollback` command), as `onboard` passes
    `based_on=None` to package_store."""
    _audit_if_denied(actor=actor, integration=integration, meta=meta, attempted="rollback")
    with transaction.atomic():
        reasons = []
        permission = _permission_verdict(actor=actor, integration=integration)
        if not permission.ok:
            reasons.append("You may not roll back Production of this integration.")
        reason = _reason_or_refuse(reason, reasons, what="rollback")
        package, current = _current(integration, Environment.PRODUCTION, lock=True)
        if (permission.ok and current is not None and reviewed_current is not None
                and current.number != reviewed_current):
            # Read under the lock, so of two identical posts the second sees the first's result.
            repeat = _repeated_rollback(current=current, actor=actor,
                                        reviewed_current=reviewed_current,
                                        to_version_number=to_version_number)
            if repeat is not None and not reasons and is_repeat(
                    done_at=repeat.performed_at, done_reason=repeat.reason, reason=reason):
                return repeat
            raise PromotionRefused([*reasons, f"Production changed since you reviewed it (it "
                                              f"is now v{current.number}): review the rollback "
                                              "again."])
        target = None
        if current is None:
            reasons.append("Production has no versions to roll back to.")
        elif to_version_number >= current.number:
            reasons.append(f"Choose a version earlier than the current v{current.number}.")
        else:
            target = package.versions.filter(number=to_version_number).first()
            if target is None:
                reasons.append(f"Production has no version {to_version_number}.")
        if reasons or target is None or package is None:
            raise PromotionRefused(reasons)
        values = version_values(target)
        if any(value is UNKNOWN for value in values.values()):
            raise PromotionRefused(_unreadable(values, where=f"Production v{target.number}"))
        return _production_write(
            kind=PromotionKind.ROLLBACK, integration=integration, package=package,
            source=target, previous=current, values=values, reason=reason, actor=actor,
            meta=meta, copied_credentials=False, details={"to_version": target.number},
        )


def _repeated_rollback(*, current: PackageVersion, actor: Any, reviewed_current: int,
                       to_version_number: int) -> Promotion | None:
    """The rollback that made `current`, if it is this very request made before: by `actor`,
    from the version they reviewed, to the version they chose. Someone else's identical
    rollback is not theirs to claim (nor their reason on it): they are told Production changed,
    and the history shows them who changed it."""
    return (Promotion.objects.filter(
        new_version=current, kind=PromotionKind.ROLLBACK, performed_by=actor,
        previous_version__number=reviewed_current, source_version__number=to_version_number)
        .select_related("source_version", "new_version").first())


def _production_write(
    *, kind: PromotionKind, integration: Integration, package: OnboardingPackage,
    source: PackageVersion, previous: PackageVersion | None, values: dict[str, Any],
    reason: str, actor: Any, meta: RequestMeta | None, copied_credentials: bool,
    details: dict[str, Any],
) -> Promotion:
    """The shared end of promotion and rollback, inside their transaction and locks: the new
    Production version, its Promotion record and the audit event (names only, never values)."""
    promoting = kind == PromotionKind.PROMOTION
    diff = field_diff(before=previous, after=values)
    new = version_create(package=package, values=values, actor=actor,
                         source=VersionSource.PROMOTION if promoting else VersionSource.ROLLBACK)
    promotion = Promotion.objects.create(
        integration=integration, kind=kind, source_version=source, previous_version=previous,
        new_version=new, copied_credentials=copied_credentials, diff=diff, reason=reason,
        performed_by=actor,
    )
    audit_record(
        action=AuditAction.PROMOTION if promoting else AuditAction.ROLLBACK, actor=actor,
        meta=meta, integration=integration, environment=Environment.PRODUCTION,
        target=f"v{new.number}",
        details={
            **details,
            "previous_version": previous.number if previous else None,
            "new_version": new.number,
            "changed": [row["field"] for row in diff if row["status"] != DiffStatus.UNCHANGED],
            "promotion": str(promotion.uuid),
        },
    )
    return promotion


def production_versions(*, integration: Integration) -> list[VersionRow]:
    """Production's versions, newest first, with a masked client ID and which is current."""
    return package_versions(integration=integration, environment=Environment.PRODUCTION)


def promotion_history(*, integration: Integration, limit: int | None = None
                      ) -> list[Promotion]:
    """Promotions and rollbacks, newest first (the newest `limit` of them, if given), with who
    did them and between which versions."""
    promotions = (
        Promotion.objects.filter(integration=integration)
        .select_related("performed_by", "source_version__package", "previous_version",
                        "new_version")
    )
    return list(promotions[:limit] if limit is not None else promotions)
