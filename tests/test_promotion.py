"""Promotion service: guards, diff, keep/copy credentials, rollback, refusals change nothing,
and concurrent promotions on PostgreSQL."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.utils import timezone

from onboarding.iqmetrix import Outcome
from onboarding.models import (
    AuditEvent,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    ProductionState,
    Promotion,
    PromotionKind,
    VersionSource,
)
from onboarding.services.audit import AuditAction, audit_verify
from onboarding.services.packages import package_current
from onboarding.services.promotion import (
    PromotionRefused,
    field_diff,
    promotion_apply,
    promotion_preview,
    rollback_apply,
)
from onboarding.services.status import package_state
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard

PRODUCTION_SECRET = "prod-secret-Vb7Nq2Wd"


def passing_check(version: PackageVersion, *, age: timedelta = timedelta(minutes=5),
                  outcome: str = Outcome.OK) -> ConnectivityCheck:
    return ConnectivityCheck.objects.create(
        package=version.package, version=version, sent_at=timezone.now() - age,
        outcome=outcome, http_status=200 if outcome == Outcome.OK else 400, message="test",
    )


def snapshot() -> tuple[int, ...]:
    # A refusal changes nothing; only the record of a denied attempt may be added.
    return (PackageVersion.objects.count(), Promotion.objects.count(),
            AuditEvent.objects.exclude(action="denied").count(),
            OnboardingPackage.objects.count())


def promote(integration: Integration, actor, **overrides) -> Promotion:
    kwargs = {"reason": "Go live for the spring launch", "copy_credentials": False,
              "reviewed_sandbox_version": None, "reviewed_production_version": None}
    kwargs.update(overrides)
    return promotion_apply(integration=integration, actor=actor, **kwargs)


@pytest.fixture
def checked_sandbox(sandbox_version) -> PackageVersion:
    passing_check(sandbox_version)
    return sandbox_version


@pytest.fixture
def with_production(checked_sandbox) -> PackageVersion:
    return onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
                   username="prod.user@example.com", client_secret=PRODUCTION_SECRET,
                   company_id=555, location_id="")


def test_promotion_copies_configuration_and_credentials_into_a_new_production_version(
        checked_sandbox, release_manager):
    integration = checked_sandbox.package.integration
    promotion = promote(integration, release_manager, copy_credentials=True)
    new = promotion.new_version
    assert new.package.environment == Environment.PRODUCTION
    assert (new.number, new.source, new.created_by) == (1, VersionSource.PROMOTION,
                                                        release_manager)
    assert new.client_secret == KNOWN_SECRET and new.password == KNOWN_PASSWORD
    assert (new.company_id, new.location_id) == (checked_sandbox.company_id, "loc-1")
    assert (promotion.kind, promotion.source_version, promotion.previous_version) == (
        PromotionKind.PROMOTION, checked_sandbox, None)
    assert promotion.copied_credentials is True
    assert promotion.reason == "Go live for the spring launch"


def test_promoted_secrets_are_encrypted_for_the_production_row(checked_sandbox, release_manager):
    new = promote(checked_sandbox.package.integration, release_manager,
                  copy_credentials=True).new_version
    stored = PackageVersion.objects.filter(pk=new.pk).values_list("client_secret", flat=True)[0]
    original = PackageVersion.objects.filter(pk=checked_sandbox.pk).values_list(
        "client_secret", flat=True)[0]
    assert stored != original and KNOWN_SECRET not in stored
    assert PackageVersion.objects.get(pk=new.pk).client_secret == KNOWN_SECRET


def test_keep_leaves_production_with_its_own_credentials(with_production, release_manager):
    integration = with_production.package.integration
    new = promote(integration, release_manager, copy_credentials=False).new_version
    assert new.number == 2
    assert new.client_secret == PRODUCTION_SECRET
    assert new.client_id == "prod-client-998877"
    assert new.username == "prod.user@example.com"
    assert (new.company_id, new.location_id) == (14146, "loc-1")  # configuration from Sandbox


def test_copy_replaces_production_credentials_with_sandbox_ones(with_production,
                                                                release_manager):
    new = promote(with_production.package.integration, release_manager,
                  copy_credentials=True).new_version
    assert new.client_secret == KNOWN_SECRET and new.client_id == "client-abcdef123456"


def test_promoted_version_is_unverified_until_a_production_check_passes(with_production,
                                                                        release_manager):
    new = promote(with_production.package.integration, release_manager).new_version
    assert package_state(version=new, last_check=None) == ProductionState.UNVERIFIED
    check = passing_check(new)
    assert package_state(version=new, last_check=check) == ProductionState.VERIFIED


def test_preview_reports_changed_unchanged_and_new_fields(with_production, release_manager):
    preview = promotion_preview(integration=with_production.package.integration,
                                actor=release_manager)
    keep = {row["field"]: row["status"] for row in preview.diff_keep}
    copy = {row["field"]: row["status"] for row in preview.diff_copy}
    assert keep["client_secret"] == "unchanged" and copy["client_secret"] == "changed"
    assert keep["client_id"] == "unchanged" and copy["client_id"] == "changed"
    assert keep["company_id"] == "changed"  # 555 → 14146
    assert keep["location_id"] == "new"  # empty in Production
    assert keep["response_format"] == "unchanged"
    assert preview.allowed and preview.default_credentials == "keep"


def test_with_no_production_version_every_field_set_is_new_secrets_too(checked_sandbox,
                                                                        release_manager):
    preview = promotion_preview(integration=checked_sandbox.package.integration,
                                actor=release_manager)
    copy = {row["field"]: row["status"] for row in preview.diff_copy}
    # Nothing is stored in Production to change, or to give away by saying "new".
    assert copy["client_secret"] == copy["password"] == "new"
    assert copy["client_id"] == copy["username"] == "new"
    assert preview.default_credentials == "copy"  # Production has no credentials yet
    assert KNOWN_SECRET not in repr(preview.diff_copy) + repr(preview.diff_keep)
    promotion = promote(checked_sandbox.package.integration, release_manager,
                        copy_credentials=True)
    assert {row["field"]: row["status"] for row in promotion.diff}["password"] == "new"


def test_secrets_of_a_production_version_are_never_new_only_changed(checked_sandbox,
                                                                    release_manager):
    # Production's stored password is empty: "new" would tell the reader so.
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            username="prod.user@example.com", client_secret="", password="")
    preview = promotion_preview(integration=checked_sandbox.package.integration,
                                actor=release_manager)
    copy = {row["field"]: row["status"] for row in preview.diff_copy}
    assert copy["client_secret"] == copy["password"] == "changed"
    assert copy["client_id"] == "changed"
    assert KNOWN_SECRET not in repr(preview.diff_copy) + repr(preview.diff_keep)


def test_the_passing_check_verdict_names_the_time_zone_of_its_time(checked_sandbox,
                                                                   release_manager, settings):
    settings.TIME_ZONE = "America/Regina"  # UTC-6 all year
    check = ConnectivityCheck.objects.get()
    preview = promotion_preview(integration=checked_sandbox.package.integration,
                                actor=release_manager)
    local = check.sent_at.astimezone(ZoneInfo("America/Regina"))
    assert (f"Sandbox v1 passed a connectivity check at {local:%Y-%m-%d %H:%M} "
            "(America/Regina).") in [verdict.sentence for verdict in preview.verdicts]


def test_field_diff_treats_both_empty_as_unchanged():
    rows = field_diff(before=None, after={"location_id": "", "notes": ""})
    statuses = {row["field"]: row["status"] for row in rows}
    assert statuses["location_id"] == statuses["notes"] == "unchanged"


def test_promotion_is_audited_without_values(with_production, release_manager):
    promotion = promote(with_production.package.integration, release_manager)
    event = AuditEvent.objects.filter(action=AuditAction.PROMOTION).get()
    assert event.details["new_version"] == promotion.new_version.number
    assert event.details["copied_credentials"] is False
    assert "company_id" in event.details["changed"]
    dumped = repr(event.details) + event.target
    assert KNOWN_SECRET not in dumped and PRODUCTION_SECRET not in dumped
    assert "14146" not in dumped
    assert audit_verify().ok


def refused(integration, actor, **overrides) -> list[str]:
    before = snapshot()
    with pytest.raises(PromotionRefused) as info:
        promote(integration, actor, **overrides)
    assert snapshot() == before, "a refused promotion must change nothing"
    return info.value.reasons


def test_refused_when_sandbox_has_no_package(release_manager):
    integration = Integration.objects.create(name="Empty", slug="empty")
    reasons = refused(integration, release_manager)
    assert reasons == ["Sandbox has no package yet: onboard Sandbox and check it first."]


def test_refused_when_sandbox_was_never_checked(sandbox_version, release_manager):
    reasons = refused(sandbox_version.package.integration, release_manager)
    assert reasons == ["Sandbox v1 has never passed a connectivity check: run a check first."]


def test_refused_when_the_last_check_failed(sandbox_version, release_manager):
    passing_check(sandbox_version, age=timedelta(hours=1))
    passing_check(sandbox_version, outcome=Outcome.INVALID_CREDENTIALS)
    reasons = refused(sandbox_version.package.integration, release_manager)
    assert "did not pass (Invalid user name or password)" in reasons[0]


def test_refused_when_the_passing_check_is_stale(sandbox_version, release_manager, settings):
    settings.PROMOTION_MAX_CHECK_AGE = timedelta(hours=24)
    passing_check(sandbox_version, age=timedelta(hours=25))
    reasons = refused(sandbox_version.package.integration, release_manager)
    assert reasons == ["The last passing check of Sandbox v1 is 25 hours old; promotion needs "
                       "one from the last 24 hours: check again."]


def test_refused_when_only_an_older_sandbox_version_passed(checked_sandbox, release_manager):
    onboard(company_id=777)  # Sandbox v2, never checked
    reasons = refused(checked_sandbox.package.integration, release_manager)
    assert reasons == ["Sandbox v2 has never passed a connectivity check: run a check first."]


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_refused_without_a_reason(checked_sandbox, release_manager, reason):
    reasons = refused(checked_sandbox.package.integration, release_manager, reason=reason)
    assert reasons == ["Give a reason for the promotion."]


# The service's own rule, for every caller (commands and scripts have no form field): the
# reason goes into the promotion row and the audit event.
@pytest.mark.parametrize(("reason", "sentence"), [
    ("x" * 2001, "The reason for the promotion has 2,001 characters; keep it to 2,000."),
    ("INC-4711\x00", "The reason for the promotion contains a null character; remove it."),
])
def test_refused_with_a_reason_that_cannot_be_kept(checked_sandbox, release_manager, reason,
                                                   sentence):
    before = snapshot()
    reasons = refused(checked_sandbox.package.integration, release_manager, reason=reason)
    assert reasons == [sentence]
    assert snapshot() == before


def test_a_reason_of_2000_characters_is_kept(checked_sandbox, release_manager):
    promotion = promotion_apply(
        integration=checked_sandbox.package.integration, actor=release_manager,
        reason=f"  {'x' * 2000}  ", copy_credentials=True, reviewed_sandbox_version=None,
        reviewed_production_version=None)
    assert promotion.reason == "x" * 2000


def test_refused_for_a_user_without_the_promote_right(checked_sandbox, lead):
    reasons = refused(checked_sandbox.package.integration, lead)
    assert reasons == ["You may not promote this integration to Production."]
    denied = AuditEvent.objects.get(action="denied")
    assert (denied.actor_name, denied.environment, denied.target) == ("lead", "production",
                                                                      "promote")


def test_refused_without_an_actor(checked_sandbox):
    reasons = refused(checked_sandbox.package.integration, None)
    assert reasons == ["You may not promote this integration to Production."]


def test_refused_when_sandbox_changed_since_it_was_reviewed(checked_sandbox, release_manager):
    integration = checked_sandbox.package.integration
    reviewed = promotion_preview(integration=integration, actor=release_manager)
    newer = onboard(company_id=777)
    passing_check(newer)
    reasons = refused(integration, release_manager,
                      reviewed_sandbox_version=reviewed.sandbox_version_uuid)
    assert reasons == ["Sandbox changed since you reviewed it (it is now v2): review the "
                       "promotion again."]


def test_refused_when_production_changed_since_it_was_reviewed(checked_sandbox,
                                                              release_manager):
    integration = checked_sandbox.package.integration
    reviewed = promotion_preview(integration=integration, actor=release_manager)
    assert reviewed.production_version_uuid is None  # "Production has no version yet"
    onboard(environment=Environment.PRODUCTION, client_secret=PRODUCTION_SECRET)
    reasons = refused(integration, release_manager, copy_credentials=True,
                      reviewed_production_version="none")
    assert reasons == ["Production changed since you reviewed it (it is now v1): review the "
                       "promotion again."]
    assert package_current(integration=integration,
                           environment=Environment.PRODUCTION).client_secret == PRODUCTION_SECRET


def test_both_sides_changed_since_review_are_named_at_once(checked_sandbox, release_manager):
    integration = checked_sandbox.package.integration
    reviewed = promotion_preview(integration=integration, actor=release_manager)
    passing_check(onboard(company_id=777))  # Sandbox v2
    onboard(environment=Environment.PRODUCTION)  # Production v1
    reasons = refused(integration, release_manager,
                      reviewed_sandbox_version=reviewed.sandbox_version_uuid,
                      reviewed_production_version="none")
    assert [r.split(" changed since")[0] for r in reasons] == ["Sandbox", "Production"]


def test_reviewed_production_that_is_still_current_goes_ahead(with_production,
                                                              release_manager):
    integration = with_production.package.integration
    reviewed = promotion_preview(integration=integration, actor=release_manager)
    promotion = promote(integration, release_manager,
                        reviewed_sandbox_version=str(reviewed.sandbox_version_uuid),
                        reviewed_production_version=str(reviewed.production_version_uuid))
    assert (promotion.previous_version, promotion.new_version.number) == (with_production, 2)


def test_reviewed_version_that_is_still_current_goes_ahead(checked_sandbox, release_manager):
    integration = checked_sandbox.package.integration
    reviewed = promotion_preview(integration=integration, actor=release_manager)
    promotion = promote(integration, release_manager,
                        reviewed_sandbox_version=str(reviewed.sandbox_version_uuid))
    assert promotion.source_version == checked_sandbox


def test_every_reason_is_given_at_once(sandbox_version, lead):
    reasons = refused(sandbox_version.package.integration, lead, reason="")
    assert len(reasons) == 3


def test_preview_lists_the_refusing_guards(sandbox_version, lead):
    preview = promotion_preview(integration=sandbox_version.package.integration, actor=lead)
    assert not preview.allowed
    assert preview.reasons == [
        "You may not promote this integration to Production.",
        "Sandbox v1 has never passed a connectivity check: run a check first.",
    ]


# ---- rollback -------------------------------------------------------------------------------

@pytest.fixture
def three_production_versions(with_production, release_manager) -> Integration:
    integration = with_production.package.integration
    promote(integration, release_manager)  # v2
    promote(integration, release_manager, copy_credentials=True)  # v3: Sandbox's secret
    return integration


def test_rollback_writes_a_new_version_equal_to_an_earlier_one(three_production_versions,
                                                               release_manager):
    integration = three_production_versions
    rollback = rollback_apply(integration=integration, actor=release_manager,
                              to_version_number=1, reason="v3 broke orders")
    new = rollback.new_version
    assert (new.number, new.source) == (4, VersionSource.ROLLBACK)
    assert new.client_secret == PRODUCTION_SECRET and new.company_id == 555
    assert (rollback.kind, rollback.source_version.number, rollback.previous_version.number) == (
        PromotionKind.ROLLBACK, 1, 3)
    assert package_current(integration=integration, environment=Environment.PRODUCTION) == new
    event = AuditEvent.objects.filter(action=AuditAction.ROLLBACK).get()
    assert event.details["to_version"] == 1 and PRODUCTION_SECRET not in repr(event.details)


@pytest.mark.parametrize(("number", "sentence"), [
    (3, "Choose a version earlier than the current v3."),
    (9, "Choose a version earlier than the current v3."),
    (0, "Production has no version 0."),
])
def test_rollback_refuses_a_version_that_is_not_earlier(three_production_versions,
                                                        release_manager, number, sentence):
    before = snapshot()
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=release_manager,
                       to_version_number=number, reason="why not")
    assert info.value.reasons == [sentence]
    assert snapshot() == before


def test_rollback_needs_a_reason_and_the_right(three_production_versions, lead):
    before = snapshot()
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=lead,
                       to_version_number=1, reason=" ")
    assert info.value.reasons == ["You may not roll back Production of this integration.",
                                  "Give a reason for the rollback."]
    assert snapshot() == before
    assert AuditEvent.objects.filter(action="denied", target="rollback").count() == 1


def test_rollback_refuses_a_reason_too_long_to_keep(three_production_versions, release_manager):
    before = snapshot()
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=release_manager,
                       to_version_number=1, reason="y" * 5000)
    assert info.value.reasons == ["The reason for the rollback has 5,000 characters; "
                                  "keep it to 2,000."]
    assert snapshot() == before


def test_rollback_without_production_is_refused(checked_sandbox, release_manager):
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=checked_sandbox.package.integration, actor=release_manager,
                       to_version_number=1, reason="oops")
    assert info.value.reasons == ["Production has no versions to roll back to."]


def rollbacks() -> tuple[int, int, int]:
    """Production versions, rollback records and rollback events."""
    return (PackageVersion.objects.filter(package__environment=Environment.PRODUCTION).count(),
            Promotion.objects.filter(kind=PromotionKind.ROLLBACK).count(),
            AuditEvent.objects.filter(action=AuditAction.ROLLBACK).count())


def test_rollback_refuses_when_production_changed_since_it_was_reviewed(
        three_production_versions, release_manager):
    # The page showed v2 as current; a promotion made v3 before the rollback was posted.
    before = snapshot()
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=release_manager,
                       to_version_number=1, reason="v2 broke orders", reviewed_current=2)
    assert info.value.reasons == ["Production changed since you reviewed it (it is now v3): "
                                  "review the rollback again."]
    assert snapshot() == before


def test_rollback_reviewed_against_the_current_version_goes_ahead(three_production_versions,
                                                                  release_manager):
    rollback = rollback_apply(integration=three_production_versions, actor=release_manager,
                              to_version_number=1, reason="v3 broke orders", reviewed_current=3)
    assert (rollback.previous_version.number, rollback.new_version.number) == (3, 4)


def test_the_same_rollback_posted_twice_is_done_once(three_production_versions,
                                                     release_manager):
    kwargs = {"integration": three_production_versions, "actor": release_manager,
              "to_version_number": 1, "reason": "v3 broke orders", "reviewed_current": 3}
    first = rollback_apply(**kwargs)
    assert rollbacks() == (4, 1, 1)
    again = rollback_apply(**kwargs)  # a second click, or the form sent again
    assert again == first and again.new_version.number == 4
    assert rollbacks() == (4, 1, 1)
    # Anything else reviewed against v3 is someone acting on an old page: refused.
    with pytest.raises(PromotionRefused, match=r"\(it is now v4\)"):
        rollback_apply(**{**kwargs, "to_version_number": 2})
    assert rollbacks() == (4, 1, 1)


def test_someone_elses_identical_rollback_is_not_claimed_as_ones_own(
        three_production_versions, release_manager):
    colleague = User.objects.create_superuser(username="colleague", password="unused-1234")
    rollback_apply(integration=three_production_versions, actor=colleague,
                   to_version_number=1, reason="orders broke", reviewed_current=3)
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=release_manager,
                       to_version_number=1, reason="orders broke", reviewed_current=3)
    assert info.value.reasons == ["Production changed since you reviewed it (it is now v4): "
                                  "review the rollback again."]
    assert rollbacks() == (4, 1, 1)


def test_a_repeat_is_refused_on_its_own_grounds_first(three_production_versions,
                                                      release_manager, lead):
    rollback_apply(integration=three_production_versions, actor=release_manager,
                   to_version_number=1, reason="orders broke", reviewed_current=3)
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=release_manager,
                       to_version_number=1, reason=" ", reviewed_current=3)
    assert info.value.reasons == ["Give a reason for the rollback.",
                                  "Production changed since you reviewed it (it is now v4): "
                                  "review the rollback again."]
    with pytest.raises(PromotionRefused) as info:
        rollback_apply(integration=three_production_versions, actor=lead,
                       to_version_number=1, reason="orders broke", reviewed_current=3)
    assert info.value.reasons == ["You may not roll back Production of this integration."]
    assert rollbacks() == (4, 1, 1)


def test_without_a_reviewed_version_rollback_states_its_target_outright(
        three_production_versions, release_manager):
    # The command's way: no page was reviewed, so there is nothing to compare with.
    rollback_apply(integration=three_production_versions, actor=release_manager,
                   to_version_number=1, reason="orders broke", reviewed_current=None)
    rollback_apply(integration=three_production_versions, actor=release_manager,
                   to_version_number=2, reason="v1 was worse", reviewed_current=None)
    assert rollbacks() == (5, 2, 2)


# ---- concurrency (PostgreSQL) ---------------------------------------------------------------

def _at_once(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released together (each on its own connection); what each
    returned, in order. An error in any of them fails the test from the main thread."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index: int, action: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = action()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, action))
               for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_get_consecutive_versions_and_lose_nothing():
    # A superuser, not the group: transactional tests may run after a flush removed the groups.
    manager = User.objects.create_superuser(username="release", password="unused-1234")
    sandbox = onboard()
    passing_check(sandbox)
    integration = sandbox.package.integration
    rounds, threads_count = 4, 3

    def worker(n: int) -> None:
        for i in range(rounds):
            promote(integration, manager, reason=f"thread {n} round {i}",
                    copy_credentials=bool(i % 2))

    _at_once(*(functools.partial(worker, n) for n in range(threads_count)))
    total = rounds * threads_count
    numbers = list(PackageVersion.objects.filter(package__environment=Environment.PRODUCTION)
                   .order_by("number").values_list("number", flat=True))
    assert numbers == list(range(1, total + 1))
    promotions = list(Promotion.objects.order_by("new_version__number"))
    assert len(promotions) == total
    # Each promotion replaced exactly the version before it: no update was lost.
    previous = [p.previous_version.number if p.previous_version else None for p in promotions]
    assert previous == [None, *range(1, total)]
    assert audit_verify().ok


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_promotion_racing_a_production_edit_creates_one_slot_and_loses_nothing():
    from onboarding.services.packages import package_store
    from tests.conftest import package_data

    manager = User.objects.create_superuser(username="release", password="unused-1234")
    integrations = []
    for n in range(5):  # five races, each on an integration without a Production slot yet
        sandbox = onboard(name=f"Race {n}")
        passing_check(sandbox)
        integrations.append(sandbox.package.integration)
    for integration in integrations:
        _at_once(functools.partial(promote, integration, manager),
                 functools.partial(package_store, integration=integration,
                                   environment=Environment.PRODUCTION, actor=manager,
                                   data=package_data(client_secret=PRODUCTION_SECRET)))
    for integration in integrations:
        package = OnboardingPackage.objects.get(integration=integration,
                                                environment=Environment.PRODUCTION)
        numbers = sorted(package.versions.values_list("number", flat=True))
        assert numbers == [1, 2]
        assert package.current_version.number == 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_identical_rollbacks_at_once_roll_back_once():
    # Two clicks whose requests run side by side: the second waits for the first's row lock and
    # then finds its own rollback done, instead of writing a second one.
    manager = User.objects.create_superuser(username="release", password="unused-1234")
    integration = onboard(environment=Environment.PRODUCTION).package.integration
    onboard(environment=Environment.PRODUCTION, location_id="loc-2")  # v2
    click = functools.partial(rollback_apply, integration=integration, actor=manager,
                              to_version_number=1, reason="orders broke", reviewed_current=2)
    results = _at_once(click, click)
    assert results[0].pk == results[1].pk
    assert rollbacks() == (3, 1, 1)
    assert audit_verify().ok


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_promotion_and_a_rollback_at_once_each_replace_the_version_before_them():
    # Whichever waits for the other's lock must see the version the other wrote, not the one
    # (or none) it read before waiting.
    manager = User.objects.create_superuser(username="release", password="unused-1234")
    sandbox = onboard()
    passing_check(sandbox)
    integration = sandbox.package.integration
    onboard(environment=Environment.PRODUCTION, client_secret=PRODUCTION_SECRET)  # v1
    onboard(environment=Environment.PRODUCTION, location_id="loc-2")  # v2
    for _ in range(5):
        _at_once(functools.partial(promote, integration, manager),
                 functools.partial(rollback_apply, integration=integration, actor=manager,
                                   to_version_number=1, reason="orders broke"))
    promotions = list(Promotion.objects.select_related("previous_version", "new_version"))
    assert len(promotions) == 10
    assert all(p.previous_version.number == p.new_version.number - 1 for p in promotions)
    assert audit_verify().ok


def test_a_promotion_nobody_chose_credentials_for_is_refused(checked_sandbox, release_manager):
    # The admin confirmation offers no choice for an integration it shows as refused; by the
    # post its guards may pass, but keep or copy was never decided.
    before = snapshot()
    with pytest.raises(PromotionRefused) as refused:
        promote(checked_sandbox.package.integration, release_manager, copy_credentials=None)
    assert refused.value.reasons == [
        "No credentials choice was made for it (keep Production's or copy Sandbox's): review "
        "the promotion again."]
    assert snapshot() == before


def test_a_guard_refusal_is_not_buried_under_the_missing_credentials_choice(sandbox_version,
                                                                            release_manager):
    with pytest.raises(PromotionRefused) as refused:
        promote(sandbox_version.package.integration, release_manager, copy_credentials=None)
    assert [reason.split(":")[0] for reason in refused.value.reasons] == [
        "Sandbox v1 has never passed a connectivity check"]
