"""Fast seeding for the benchmark: bulk inserts of rows shaped as the services write them.

Encrypted fields are sealed by bulk_create (it calls each field's pre_save), so the stored values
are real ciphertexts bound to their rows. Audit events are chained with the audit service's own
signing function, so `audit_verify` walks a genuine chain.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from onboarding.iqmetrix import Outcome, token_fingerprint
from onboarding.models import (
    AuditChainHead,
    AuditEvent,
    CheckTrigger,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
)
from onboarding.services.audit import GENESIS, _sign, head_values

BATCH = 1000


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    username: str
    password: str


def lead_user() -> User:
    """A user of the "Integration leads" group, as most visitors of the overview are."""
    user, created = User.objects.get_or_create(username="bench-lead")
    if created:
        user.groups.add(Group.objects.get(name="Integration leads"))
    return user


def _chunks(numbers: range, size: int):
    it = iter(numbers)
    while chunk := list(islice(it, size)):
        yield chunk


def integrations(*, start: int, stop: int, credentials: Credentials,
                 environments: tuple[Environment, ...] = (Environment.SANDBOX,
                                                          Environment.PRODUCTION),
                 with_checks: bool = True) -> list[int]:
    """Integrations `start`..`stop-1`, a package with one version per environment and, with
    `with_checks`, an older failed check and a newer one (every tenth package still failing).
    Returns the package ids."""
    package_ids: list[int] = []
    for chunk in _chunks(range(start, stop), BATCH):
        with transaction.atomic():
            package_ids += _integration_batch(chunk, credentials, environments, with_checks)
    return package_ids


def _integration_batch(numbers: list[int], creds: Credentials,
                       environments: tuple[Environment, ...], with_checks: bool) -> list[int]:
    now = timezone.now()
    made = Integration.objects.bulk_create(
        [Integration(name=f"Bench {n:05d}", slug=f"bench-{n:05d}") for n in numbers]
    )
    packages = OnboardingPackage.objects.bulk_create([
        OnboardingPackage(integration=integration, environment=env)
        for integration in made for env in environments
    ])
    versions = PackageVersion.objects.bulk_create([
        PackageVersion(package=package, number=1, client_id=creds.client_id,
                       client_secret=creds.client_secret, username=creds.username,
                       password=creds.password, company_id=14146, location_id="loc-1")
        for package in packages
    ])
    ids = [p.pk for p in packages]
    first = PackageVersion.objects.filter(package=OuterRef("pk"), number=1).values("pk")[:1]
    OnboardingPackage.objects.filter(pk__in=ids).update(current_version=Subquery(first))
    if not with_checks:
        return ids
    checks = []
    failing = []
    for index, (package, version) in enumerate(zip(packages, versions, strict=True)):
        checks.append(_check(package, version, now - timedelta(hours=2), ok=False))
        still_failing = index % 10 == 9
        checks.append(_check(package, version, now - timedelta(minutes=5), ok=not still_failing))
        if still_failing:
            failing.append(package.pk)
    ConnectivityCheck.objects.bulk_create(checks)
    OnboardingPackage.objects.filter(pk__in=failing).update(
        failing_since=now - timedelta(hours=2))
    return ids


def _check(package: OnboardingPackage, version: PackageVersion, sent_at, *, ok: bool
           ) -> ConnectivityCheck:
    if not ok:
        return ConnectivityCheck(
            package=package, version=version, trigger=CheckTrigger.SCHEDULED, sent_at=sent_at,
            duration_ms=240, outcome=Outcome.INVALID_CREDENTIALS, http_status=400,
            message="iQmetrix rejected the user name or password for Sandbox.",
        )
    token = secrets.token_urlsafe(32)
    return ConnectivityCheck(
        package=package, version=version, trigger=CheckTrigger.SCHEDULED, sent_at=sent_at,
        duration_ms=180, outcome=Outcome.OK, http_status=200,
        message="iQmetrix issued a token; it expires in 12 hours.",
        expires_at=sent_at + timedelta(seconds=43199), token_fingerprint=token_fingerprint(token),
        access_token=token, refresh_token=secrets.token_urlsafe(32),
    )


def encrypted_values(*, count: int, credentials: Credentials) -> None:
    """`count` encrypted values (four per version) on versions of one package."""
    package = OnboardingPackage.objects.get(
        pk=integrations(start=0, stop=1, credentials=credentials,
                        environments=(Environment.SANDBOX,), with_checks=False)[0])
    already = 4  # the package's first version
    for chunk in _chunks(range(2, (count - already) // 4 + 2), BATCH):
        with transaction.atomic():
            PackageVersion.objects.bulk_create([
                PackageVersion(package=package, number=number, client_id=credentials.client_id,
                               client_secret=credentials.client_secret,
                               username=credentials.username, password=credentials.password)
                for number in chunk
            ])


def audit_events(*, count: int) -> None:
    """Append `count` correctly chained events after the current head of the chain."""
    head, _ = AuditChainHead.objects.get_or_create(id=1)
    prev, seq = head.last_hmac or GENESIS, head.events
    now = timezone.now()
    for chunk in _chunks(range(count), 2000):
        events = []
        for _ in chunk:
            seq += 1
            event = AuditEvent(
                seq=seq, at=now, actor_name="system", ip="127.0.0.1", user_agent="bench",
                action="check", integration_name="Bench 00000", environment="sandbox",
                target="v1", details={"outcome": "ok", "http_status": 200, "version": 1,
                                      "kind": "password", "trigger": "scheduled"},
                prev_hmac=prev,
            )
            event.hmac = prev = _sign(event)
            events.append(event)
        with transaction.atomic():
            AuditEvent.objects.bulk_create(events)
    last = AuditEvent.objects.order_by("-seq").values_list("pk", flat=True).first()
    AuditChainHead.objects.filter(id=1).update(
        **head_values(events=seq, last_event_id=last or 0, last_hmac=prev))
