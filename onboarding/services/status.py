"""What a package looks like right now: version, state, last check, token expiry.

Built with a fixed number of queries whatever the number of integrations, because the overview
and `packages` list every one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from onboarding.compiled import CompiledQuery
from onboarding.iqmetrix import Outcome
from onboarding.models import (
    CheckKind,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    ProductionState,
)


@dataclass(frozen=True)
class PackageStatus:
    integration: Integration
    environment: Environment
    package: OnboardingPackage | None
    version: PackageVersion | None
    state: ProductionState
    last_check: ConnectivityCheck | None
    # Whether "Refresh token" can work: a check of this package still holds a refresh token.
    refresh_held: bool = False
    # The newest passing check that still holds its access token: the token the reveal page
    # hands out (`checks.check_live_token`, which also drops it once expired). Not the last
    # check: a refused refresh, or a failed token exchange after a pass, leaves that token
    # valid, and the countdown must not vanish while Reveal still offers it.
    token_check: ConnectivityCheck | None = None

    @property
    def expires_at(self) -> datetime | None:
        check = self.token_check
        return check.expires_at if check is not None else None

    @property
    def token_from_earlier_check(self) -> bool:
        """The countdown's token came from a check before the last one (so the page says which),
        e.g. the pass before a refused refresh."""
        token, last = self.token_check, self.last_check
        return token is not None and last is not None and token.pk != last.pk


# iQmetrix answers a dead refresh token with the same `invalid_grant` as a wrong password, so
# the client records both as INVALID_CREDENTIALS. Its label ("Invalid user name or password")
# would blame credentials the refresh never sent.
REFRESH_REFUSED_LABEL = "Refresh token refused"


def check_outcome_label(*, check: ConnectivityCheck) -> str:
    """The outcome of a check in words, for every page that lists outcomes."""
    if check.kind == CheckKind.REFRESH and check.outcome == Outcome.INVALID_CREDENTIALS:
        return REFRESH_REFUSED_LABEL
    # A value no longer among the choices (an older release's) is shown as stored, not a 500.
    return Outcome(check.outcome).label if check.outcome in Outcome.values else check.outcome


def package_state(*, version: PackageVersion | None, last_check: ConnectivityCheck | None
                  ) -> ProductionState:
    """Verified only when the newest token exchange (`last_check`: the newest password-grant
    check, as for the promotion guard and `failing_since`) is of the current version and
    passed. A refresh, passed or refused, proves nothing about the user name and password."""
    if version is None or not version.has_credentials:
        return ProductionState.CREDENTIALS_MISSING
    if last_check is not None and last_check.version_id == version.pk and last_check.ok:
        return ProductionState.VERIFIED
    return ProductionState.UNVERIFIED


# What a status shows of a check; the rest (tokens, the /me answer, timings) stays in the table.
_CHECK_FIELDS = ("id", "package_id", "version_id", "kind", "outcome", "sent_at", "expires_at",
                 "message")


def _last_checks(packages: Iterable[OnboardingPackage]) -> dict[int, ConnectivityCheck]:
    """The checks `packages_with_last_check` named, by id, in one query."""
    ids = {getattr(p, name, None) for p in packages
           for name in ("last_check_id", "last_exchange_id", "token_check_id")} - {None}
    return {c.pk: c for c in ConnectivityCheck.objects.filter(pk__in=ids).only(*_CHECK_FIELDS)}


# A check whose token a card counts down and Reveal may hand out (while it is valid): it passed
# and still holds its access token. The order is `newest`'s below.
HOLDS_TOKEN = {"outcome": Outcome.OK, "access_token__isnull": False}


def check_expired_token(*, package: OnboardingPackage) -> ConnectivityCheck | None:
    """The check whose token the package's card counts down, if that token has expired; None
    when it is live (`checks.check_live_token` then has it) or there is none. The card keeps
    such a token at "expired", so the reveal page can say the same, not only "no live token"."""
    check = (ConnectivityCheck.objects.filter(package=package, **HOLDS_TOKEN)
             .order_by("-sent_at", "-id").only(*_CHECK_FIELDS).first())
    if check is None or check.expires_at is None or check.expires_at > timezone.now():
        return None
    return check


def packages_with_last_check(queryset: QuerySet[OnboardingPackage]
                             ) -> QuerySet[OnboardingPackage]:
    """Packages with their current version, the id of their newest check (`last_check_id`), of
    their newest token exchange (`last_exchange_id`, a password-grant check: the state), of
    the newest passing check still holding its access token (`token_check_id`: the countdown,
    as `check_live_token` picks the token to reveal) and whether a check of the current version
    holds a refresh token (`refresh_held`: "Refresh token" is offered), in one query."""
    newest = ConnectivityCheck.objects.filter(package=OuterRef("pk")).order_by("-sent_at", "-id")
    refresh = ConnectivityCheck.objects.filter(package=OuterRef("pk"), refresh_token__isnull=False,
                                               version=OuterRef("current_version"))
    # "access_token IS NOT NULL" lets the database read the partial index of checks holding a
    # token (`check_package_tokens`, one or two rows a package) instead of the history.
    holding = newest.filter(**HOLDS_TOKEN)
    return queryset.select_related("current_version").annotate(
        last_check_id=Subquery(newest.values("pk")[:1]),
        last_exchange_id=Subquery(newest.filter(kind=CheckKind.PASSWORD).values("pk")[:1]),
        token_check_id=Subquery(holding.values("pk")[:1]),
        refresh_held=Exists(refresh),
    )


# What a page shows of a package is fixed by these values: a version and a check are never edited
# once written (a later check only clears the tokens of older ones, which `refresh_held` and
# `token_check_id` follow), so when any of them changes, so do these. The package's uuid goes
# into its links.
# `token_check_id` is not implied by `last_check_id`, although checks are append-only: "newest"
# is by `sent_at`, and a check can be recorded after a newer one. Scheduled checks take no claim
# of the package, so a dashboard refresh can be sent just before a scheduled exchange and be
# recorded just after it. If the refresh passes, its token is now the one revealed (recording it
# cleared every other), while the last check, the last exchange, `refresh_held` and
# `failing_since` stay as the scheduled exchange left them: without this field the overview
# would go on counting down the token the refresh replaced.
STAMP_FIELDS = ("integration_id", "environment", "pk", "uuid", "current_version_id",
                "last_check_id", "last_exchange_id", "token_check_id", "refresh_held",
                "failing_since")


# Compiling the four subqueries costs about five times what running them takes: compiled once.
_stamps = CompiledQuery(lambda *, ids: packages_with_last_check(
    OnboardingPackage.objects.filter(integration_id__in=ids)).order_by().values_list(*STAMP_FIELDS))


def package_stamps(*, integration_ids: Sequence[int]) -> list[tuple]:
    """`STAMP_FIELDS` of the integrations' packages as plain values, in one query and without a
    model instance each: the key of the overview's cache of rendered rows."""
    ids = list(dict.fromkeys(integration_ids))  # the IN list holds each id once
    if not ids:
        return []
    return _stamps.rows(ids=ids)


def status_stamp(status: PackageStatus) -> tuple | None:
    """`STAMP_FIELDS` of the package a status was built from, as `package_stamps` reads them."""
    package = status.package
    if package is None:
        return None
    return tuple(getattr(package, name) for name in STAMP_FIELDS)


def package_statuses(*, integrations: Iterable[Integration]) -> list[PackageStatus]:
    """One status per integration and environment, Sandbox first, in the integrations' order.

    Three queries whatever the number: the integrations (unless given as a list), their packages
    with versions, and their newest checks.
    """
    integration_list = list(integrations)
    if not integration_list:
        return []  # nothing to ask: building the queries would cost more than the empty answer
    by_pk = {integration.pk: integration for integration in integration_list}
    packages = list(packages_with_last_check(
        OnboardingPackage.objects.filter(integration_id__in=list(by_pk))
    ))
    checks = _last_checks(packages)
    by_key = {}
    for package in packages:
        package.integration = by_pk[package.integration_id]  # known already: no join, no query
        by_key[(package.integration_id, package.environment)] = package
    statuses = []
    for integration in integration_list:
        for env in Environment:
            package = by_key.get((integration.pk, env.value))
            version = package.current_version if package else None
            last = checks.get(package.last_check_id) if package else None
            exchange = checks.get(package.last_exchange_id) if package else None
            statuses.append(PackageStatus(
                integration=integration, environment=env, package=package, version=version,
                state=package_state(version=version, last_check=exchange), last_check=last,
                refresh_held=bool(package and package.refresh_held),
                token_check=checks.get(package.token_check_id) if package else None,
            ))
    return statuses
