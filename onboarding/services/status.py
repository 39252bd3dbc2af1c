"""What a package looks like right now: version, state, last check, token expiry.

Built with a fixed number of queries whatever the number of integrations, because the overview
and `packages` list every one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery

from onboarding.models import (
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

    @property
    def expires_at(self) -> datetime | None:
        check = self.last_check
        return check.expires_at if check is not None and check.ok else None


def package_state(*, version: PackageVersion | None, last_check: ConnectivityCheck | None
                  ) -> ProductionState:
    """Verified only when the newest check of the current version passed."""
    if version is None or not version.has_credentials:
        return ProductionState.CREDENTIALS_MISSING
    if last_check is not None and last_check.version_id == version.pk and last_check.ok:
        return ProductionState.VERIFIED
    return ProductionState.UNVERIFIED


def _last_checks(packages: Iterable[OnboardingPackage]) -> dict[int, ConnectivityCheck]:
    ids = [p.last_check_id for p in packages if getattr(p, "last_check_id", None)]
    # Tokens stay deferred: the overview never needs them, and decrypting costs time.
    checks = ConnectivityCheck.objects.filter(pk__in=ids).defer("access_token", "refresh_token")
    return {c.package_id: c for c in checks}


def packages_with_last_check(queryset: QuerySet[OnboardingPackage] | None = None
                             ) -> QuerySet[OnboardingPackage]:
    newest = ConnectivityCheck.objects.filter(package=OuterRef("pk")).order_by("-sent_at", "-id")
    queryset = queryset if queryset is not None else OnboardingPackage.objects.all()
    return queryset.select_related("integration", "current_version").annotate(
        last_check_id=Subquery(newest.values("pk")[:1])
    )


def package_statuses(*, integrations: QuerySet[Integration]) -> list[PackageStatus]:
    """One status per integration and environment, Sandbox first, integrations by name."""
    integration_list = list(integrations.order_by("name"))
    packages = list(packages_with_last_check(
        OnboardingPackage.objects.filter(integration__in=[i.pk for i in integration_list])
    ))
    checks = _last_checks(packages)
    by_key = {(p.integration_id, p.environment): p for p in packages}
    statuses = []
    for integration in integration_list:
        for env in Environment:
            package = by_key.get((integration.pk, env.value))
            version = package.current_version if package else None
            last = checks.get(package.pk) if package else None
            statuses.append(PackageStatus(
                integration=integration, environment=env, package=package, version=version,
                state=package_state(version=version, last_check=last), last_check=last,
            ))
    return statuses
