"""Connectivity checks: one token exchange against a package version, recorded and audited.

The network call never runs inside a database transaction (no lock is held while iQmetrix
thinks); the record, the token bookkeeping, `failing_since` and the audit event are then written
in one short transaction.

One check at a time per package: a check claims its package with a conditional update of
`OnboardingPackage.check_busy_until` (until its longest possible run ends) and, once recorded,
keeps the claim `DEDUPE_SECONDS` longer. A second request that finds the package claimed waits for
that check and returns it instead of starting another, so a double click runs one exchange. Only
the same question gets the same answer: when the claiming check was of another version (a version
saved just now) or another kind (a refresh after a check), the waiter runs its own afterwards.
Scheduled checks neither take nor leave this claim: the scheduler already claims each package once
per round (`schedule_claim`), and nobody double-clicks it.

A package without a version, with a missing credential, or whose credentials cannot be decrypted
is not checked at all: `CheckError` says why in one sentence and nothing is recorded, because no
exchange took place and every `Outcome` describes an answer (or silence) of iQmetrix.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from onboarding.compiled import CompiledQuery, CompiledUpdate
from onboarding.crypto import DecryptionError
from onboarding.iqmetrix import (
    AccountsURLError,
    Outcome,
    TokenResult,
    refresh_access_token,
    request_token,
    token_fingerprint,
)
from onboarding.models import (
    CheckKind,
    CheckTrigger,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    ResponseFormat,
    Role,
)
from onboarding.services.access import can
from onboarding.services.audit import AuditAction, RequestMeta, audit_record
from onboarding.services.fields import field_label
from onboarding.services.packages import integration_find
from onboarding.services.status import HOLDS_TOKEN

DEDUPE_SECONDS = 2.0
_POLL_SECONDS = 0.1
_TOKENS = ("access_token", "refresh_token")


class CheckError(Exception):
    """A check that cannot be run; the message is one plain sentence without secrets."""


# The statements of every check are compiled once (onboarding/compiled.py): on PostgreSQL,
# building them again took longer than running them.

_VERSION_FIELDS = tuple(field.attname for field in PackageVersion._meta.concrete_fields)

# The package's current version, read afresh: the package handed in may be an older copy.
_current_version = CompiledQuery(lambda *, package_id: OnboardingPackage.objects.filter(
    pk=package_id).values_list(*(f"current_version__{name}" for name in _VERSION_FIELDS)))


def _claim_query(*, package_id: int, until: Any, free_at: Any = None, held_until: Any = None
                 ) -> tuple[QuerySet, dict[str, Any]]:
    row = OnboardingPackage.objects.filter(pk=package_id)
    if held_until is not None:
        row = row.filter(check_busy_until=held_until)
    else:
        row = row.filter(Q(check_busy_until__isnull=True) | Q(check_busy_until__lte=free_at))
    return row, {"check_busy_until": until}


_claim_update = CompiledUpdate(_claim_query)


def _drop_tokens_query(*, package_id: int, keep_id: int, tokens: tuple[str, ...]
                       ) -> tuple[QuerySet, dict[str, Any]]:
    held = Q()
    for name in tokens:
        held |= Q(**{f"{name}__isnull": False})
    others = ConnectivityCheck.objects.filter(package_id=package_id).exclude(pk=keep_id)
    return others.filter(held), dict.fromkeys(tokens)


# Which tokens (a literal: ("access_token", "refresh_token") or ("refresh_token",)).
_drop_tokens = CompiledUpdate(_drop_tokens_query, literals=("tokens",))


# What a check says of its package's credentials: a refused refresh token says nothing.
Failing = Literal["passed", "failed", "unknown"]


def _package_row_query(*, package_id: int, failing: Failing, failed_at: Any = None,
                       busy_until: Any = None) -> tuple[QuerySet, dict[str, Any]]:
    changes: dict[str, Any] = {}
    if failing == "passed":
        changes["failing_since"] = None
    elif failing == "failed":  # set on the first failure, kept on later ones
        changes["failing_since"] = Coalesce(
            F("failing_since"), Value(failed_at, output_field=DateTimeField()))
    if busy_until is not None:
        changes["check_busy_until"] = busy_until
    return OnboardingPackage.objects.filter(pk=package_id), changes


# `failing` is a literal of the SQL; `failed_at` comes only with "failed", and `busy_until`
# (the double-click grace) only with checks that took the claim.
_package_row = CompiledUpdate(_package_row_query, literals=("failing",))


# --- reading ----------------------------------------------------------------------------------


def _checks(**filters: Any) -> QuerySet[ConnectivityCheck]:
    # Tokens stay deferred unless asked for: pages never show them and decrypting costs time.
    return (ConnectivityCheck.objects.filter(**filters).defer(*_TOKENS)
            .order_by("-sent_at", "-id"))


def check_history(*, package: OnboardingPackage) -> QuerySet[ConnectivityCheck]:
    """Every check of the package, newest first, with the version and who asked."""
    return _checks(package=package).select_related("version", "requested_by")


def check_live_token(*, package: OnboardingPackage) -> ConnectivityCheck | None:
    """The newest passing check whose access token is still held and not expired."""
    return (
        ConnectivityCheck.objects.filter(
            package=package, expires_at__gt=timezone.now(), **HOLDS_TOKEN,
        ).order_by("-sent_at", "-id").first()
    )


def check_targets(*, integration: str | None = None, environment: str | None = None
                  ) -> list[OnboardingPackage]:
    """Packages with a current version, integrations by name and Sandbox first: of the one named
    (by name or slug) or of every integration. CheckError when there is nothing to check."""
    packages = (OnboardingPackage.objects.filter(current_version__isnull=False)
                .select_related("integration", "current_version"))
    where = "any integration"
    if integration is not None:
        try:
            found = integration_find(name_or_slug=integration)
        except Integration.DoesNotExist:
            raise CheckError(f"No integration is named '{integration}'.") from None
        packages, where = packages.filter(integration=found), found.name
    if environment is not None:
        packages = packages.filter(environment=Environment(environment))
        where = f"{where} in {Environment(environment).label}"
    order = {env.value: index for index, env in enumerate(Environment)}
    found_packages = sorted(packages, key=lambda p: (p.integration.name, order[p.environment]))
    if not found_packages:
        raise CheckError(f"There is nothing to check: no package of {where} has credentials.")
    return found_packages


# --- running ----------------------------------------------------------------------------------


def check_run(
    *,
    package: OnboardingPackage,
    actor: Any = None,
    trigger: CheckTrigger = CheckTrigger.DASHBOARD,
    meta: RequestMeta | None = None,
    fetch_me: bool | None = None,
) -> ConnectivityCheck:
    """Exchange the current version's credentials for a token, and record the outcome.

    `actor=None` is the trusted operator of a command or the scheduler. Raises PermissionDenied
    when the actor may not check this environment, CheckError when there is nothing to check.
    """
    env = Environment(package.environment)
    _require_check(actor=actor, package=package)
    version = _version_now(package)
    if version is None:
        raise CheckError(f"The {env.label} package has no credentials yet; add them first.")
    creds = _credentials(version, env=env, names=PackageVersion.CREDENTIAL_FIELDS)
    base_url = _base_url(env)
    if fetch_me is None:
        fetch_me = settings.IQMETRIX_FETCH_ME

    def exchange() -> TokenResult:
        return request_token(base_url=base_url, environment_label=env.label,
                             accept=_accept(version), fetch_me=fetch_me,
                             **_timeouts(), **creds)

    return _claimed_run(
        package=package, version=version, kind=CheckKind.PASSWORD, trigger=trigger,
        actor=actor, meta=meta, exchange=exchange,
    )


def check_refresh(
    *, package: OnboardingPackage, actor: Any = None, meta: RequestMeta | None = None,
    trigger: CheckTrigger = CheckTrigger.DASHBOARD,
) -> ConnectivityCheck:
    """Trade the held refresh token for a new token, with the client credentials of the version
    that obtained it (iQmetrix requires the same client)."""
    env = Environment(package.environment)
    _require_check(actor=actor, package=package)
    # Only a token issued for the current version: one from an earlier version would "pass"
    # with credentials the package no longer holds.
    held = (ConnectivityCheck.objects.filter(package=package, refresh_token__isnull=False,
                                             version=F("package__current_version"))
            .select_related("version").order_by("-sent_at", "-id").first())
    if held is None:
        if ConnectivityCheck.objects.filter(package=package, refresh_token__isnull=False).exists():
            raise CheckError(f"The held {env.label} refresh token was issued for an earlier "
                             "version of the credentials; run a check of the current version.")
        raise CheckError(f"No refresh token is held for {env.label}; run a check first.")
    try:
        refresh_token = held.refresh_token
    except DecryptionError:
        raise CheckError(f"The held {env.label} refresh token cannot be decrypted with the "
                         "configured keys; run a check to get a new one.") from None
    version = held.version
    creds = _credentials(version, env=env, names=("client_id", "client_secret"))
    base_url = _base_url(env)

    def exchange() -> TokenResult:
        return refresh_access_token(base_url=base_url, environment_label=env.label,
                                    accept=_accept(version), refresh_token=refresh_token,
                                    **_timeouts(), **creds)

    return _claimed_run(
        package=package, version=version, kind=CheckKind.REFRESH, trigger=trigger,
        actor=actor, meta=meta, exchange=exchange,
    )


def _version_now(package: OnboardingPackage) -> PackageVersion | None:
    rows = _current_version.rows(package_id=package.pk)
    if not rows:
        raise OnboardingPackage.DoesNotExist("The package no longer exists.")
    if rows[0][0] is None:  # no current version: every column of the outer join is NULL
        return None
    return PackageVersion.from_db(DEFAULT_DB_ALIAS, _VERSION_FIELDS, rows[0])


def _require_check(*, actor: Any, package: OnboardingPackage) -> None:
    if actor is not None and not can(user=actor, action=Role.CHECK,
                                     environment=package.environment,
                                     integration=package.integration):
        label = Environment(package.environment).label
        raise PermissionDenied(f"You may not run {label} checks for this integration.")


def _credentials(version: PackageVersion, *, env: Environment, names: tuple[str, ...]
                 ) -> dict[str, str]:
    try:
        values = {name: getattr(version, name) for name in names}
    except DecryptionError:
        raise CheckError(f"The {env.label} credentials cannot be decrypted with the configured "
                         "keys; enter them again to check.") from None
    missing = [field_label(name) for name, value in values.items() if not value]
    if missing:
        raise CheckError(f"The {env.label} package has no {' or '.join(missing)}; add "
                         f"{'it' if len(missing) == 1 else 'them'} before checking.")
    return values


def _base_url(env: Environment) -> str:
    url = settings.IQMETRIX_ACCOUNTS_URLS.get(env.value)
    if not url:
        raise CheckError(f"No iQmetrix accounts URL is configured for {env.label}.")
    return url


def _timeouts() -> dict[str, float]:
    return {"connect_timeout": settings.IQMETRIX_CONNECT_TIMEOUT,
            "read_timeout": settings.IQMETRIX_READ_TIMEOUT}


def _accept(version: PackageVersion) -> str:
    try:
        return ResponseFormat(version.response_format).accept_header
    except ValueError:
        return ResponseFormat.JSON.accept_header


def _claim_span() -> timedelta:
    # The longest a check can take: token request and /v1/me, each bounded by connect + read.
    return timedelta(seconds=2 * (settings.IQMETRIX_CONNECT_TIMEOUT
                                  + settings.IQMETRIX_READ_TIMEOUT) + 5)


def _claim(package: OnboardingPackage, *, taking_over: Any = None) -> bool:
    """Claim the package when no check holds it, or take over from the finished check whose
    claim ends at `taking_over` (compare-and-set, so only one waiter wins)."""
    now = timezone.now()
    held = {"free_at": now} if taking_over is None else {"held_until": taking_over}
    return _claim_update.run(package_id=package.pk, until=now + _claim_span(), **held) == 1


def _claimed_check(package: OnboardingPackage) -> tuple[ConnectivityCheck | None, Any]:
    """Wait for the check that holds the package; (that check, its claim's end), or (None, None)
    if the claim ends without one (its run failed or expired), so the caller may claim."""
    span = _claim_span()
    deadline = time.monotonic() + span.total_seconds()
    while time.monotonic() < deadline:
        busy = (OnboardingPackage.objects.filter(pk=package.pk)
                .values_list("check_busy_until", flat=True).first())
        if busy is None or busy <= timezone.now():
            return None, None
        # A running claim ends `span` after it began, and its check was sent after that; a
        # finished one's check is newer still. Older checks end DEDUPE_SECONDS before a claim.
        latest = _checks(package=package, sent_at__gte=busy - span - timedelta(seconds=1)).first()
        if latest is not None:
            return latest, busy
        time.sleep(_POLL_SECONDS)
    return None, None


def _claimed_run(*, package: OnboardingPackage, exchange: Any, **record: Any
                 ) -> ConnectivityCheck:
    # A scheduled check runs on the scheduler's claim for the round: no claim of its own, and
    # so two writes (and a commit) fewer per check.
    claimed = record["trigger"] != CheckTrigger.SCHEDULED
    if claimed:
        done = _claim_or_wait(package, version=record["version"], kind=record["kind"])
        if done is not None:
            return done  # the same exchange, just made: a double click runs one check
    try:
        try:
            result = exchange()  # network I/O: outside any transaction, no lock held
        except AccountsURLError as exc:
            # A bad accounts URL setting; its message names no secret. Only this error: any
            # other ValueError's text (one from http.client quotes the value it could not
            # encode, which may be a token) must never become a message on a page.
            raise CheckError(str(exc)) from None
        return _record(package=package, result=result, **record)
    except BaseException:
        if claimed:
            _release(package)
        raise


def _claim_or_wait(package: OnboardingPackage, *, version: PackageVersion, kind: CheckKind
                   ) -> ConnectivityCheck | None:
    """Claim the package (None), or return the same exchange another request just made."""
    for _attempt in range(4):
        if _claim(package):
            return None
        other, busy = _claimed_check(package)
        if other is None:
            continue
        if other.version_id == version.pk and other.kind == kind:
            return other
        # A different exchange (another version just saved, or a refresh after a check) has
        # finished: run ours now rather than hand back an answer to another question.
        if _claim(package, taking_over=busy):
            return None
    label = Environment(package.environment).label
    raise CheckError(f"Another {label} check of this integration is still running; "
                     "try again in a minute.")


def _release(package: OnboardingPackage) -> None:
    OnboardingPackage.objects.filter(pk=package.pk).update(check_busy_until=None)


def _record(
    *, package: OnboardingPackage, version: PackageVersion, kind: CheckKind,
    trigger: CheckTrigger, actor: Any, meta: RequestMeta | None, result: TokenResult,
) -> ConnectivityCheck:
    ok = result.outcome == Outcome.OK
    message = result.message
    if ok and result.me_error:
        message = f"{message} {result.me_error}"
    check = ConnectivityCheck(
        package=package, version=version, kind=kind, trigger=trigger,
        requested_by=actor if getattr(actor, "pk", None) else None,
        sent_at=result.sent_at, duration_ms=max(0, result.duration_ms), outcome=result.outcome,
        http_status=result.http_status, message=message, expires_at=result.expires_at,
        retry_after=result.retry_after,
        token_fingerprint=token_fingerprint(result.access_token)
        if ok and result.access_token else "",
        me=result.me if ok else None,
        access_token=result.access_token if ok else None,
        refresh_token=result.refresh_token if ok else None,
    )
    # One UPDATE of the package row: failing_since (set on the first failure, kept on later ones,
    # cleared by a pass) together with the double-click claim's short extension. Only the
    # password grant says whether the credentials work: a refused refresh token (iQmetrix
    # forgets them, e.g. on a restart) says nothing about them.
    failing: Failing = "unknown"
    if kind == CheckKind.PASSWORD:
        failing = "passed" if ok else "failed"
    row_update: dict[str, Any] = {"failed_at": result.sent_at} if failing == "failed" else {}
    if trigger != CheckTrigger.SCHEDULED:
        row_update["busy_until"] = timezone.now() + timedelta(seconds=DEDUPE_SECONDS)
    with transaction.atomic():
        check.save(force_insert=True)
        if ok:
            # Only the newest success keeps tokens: after a refresh the old ones are revoked
            # anyway, and fewer stored tokens means fewer to leak.
            _drop_tokens.run(package_id=package.pk, keep_id=check.pk, tokens=_TOKENS)
        elif kind == CheckKind.REFRESH and result.outcome == Outcome.INVALID_CREDENTIALS:
            # iQmetrix refused the refresh token: it is dead, stop offering "Refresh".
            _drop_tokens.run(package_id=package.pk, keep_id=check.pk, tokens=("refresh_token",))
        if failing != "unknown" or row_update:  # a scheduled refresh changes nothing here
            _package_row.run(package_id=package.pk, failing=failing, **row_update)
        audit_record(
            action=AuditAction.REFRESH if kind == CheckKind.REFRESH else AuditAction.CHECK,
            actor=actor, meta=meta, integration=package.integration,
            environment=package.environment, target=f"v{version.number}",
            details={"outcome": str(result.outcome), "http_status": result.http_status,
                     "version": version.number, "check": str(check.uuid), "kind": str(kind),
                     "trigger": str(trigger)},
        )
    return check
