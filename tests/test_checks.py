"""The check service against the local simulator over real HTTP: records, tokens, audit, claims."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections, connection
from django.utils import timezone

from onboarding.crypto import generate_key_entry
from onboarding.iqmetrix import Outcome, token_fingerprint
from onboarding.models import (
    AuditEvent,
    CheckKind,
    CheckTrigger,
    ConnectivityCheck,
    Environment,
    OnboardingPackage,
    ProductionState,
)
from onboarding.services import checks as checks_service
from onboarding.services.audit import audit_verify
from onboarding.services.checks import (
    CheckError,
    check_history,
    check_live_token,
    check_refresh,
    check_run,
)
from onboarding.services.status import package_statuses
from onboarding.simulator import DEMO_ACCOUNT
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard
from tests.explain import index_scans, postgres_only, queries


@pytest.fixture
def no_dedupe(monkeypatch):
    """Sequential checks in one test must each run: no grace period after a check."""
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)


def raw_column(check: ConnectivityCheck, column: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM onboarding_connectivitycheck WHERE id = %s",  # noqa: S608
            [check.pk],
        )
        return cursor.fetchone()[0]


def audit_text() -> str:
    return " ".join(str(e.details) + e.target for e in AuditEvent.objects.all())


def test_a_good_package_checks_ok_with_expiry_from_the_sending_time(sandbox_simulator,
                                                                     sandbox_version, lead):
    check = check_run(package=sandbox_version.package, actor=lead)
    assert check.outcome == Outcome.OK
    assert check.http_status == 200
    assert check.version == sandbox_version
    assert check.requested_by == lead
    assert check.trigger == CheckTrigger.DASHBOARD
    assert check.kind == CheckKind.PASSWORD
    assert check.expires_at == check.sent_at + timedelta(seconds=43199)
    assert check.token_fingerprint == token_fingerprint(check.access_token)
    assert check.me["UserName"] == "api.user@example.com"


def test_tokens_are_encrypted_at_rest_and_never_audited(sandbox_simulator, sandbox_version):
    check = check_run(package=sandbox_version.package)
    stored = ConnectivityCheck.objects.get(pk=check.pk)
    assert stored.access_token and stored.refresh_token
    assert stored.access_token not in raw_column(check, "access_token")
    assert stored.refresh_token not in raw_column(check, "refresh_token")
    event = AuditEvent.objects.get(action="check")
    assert event.details == {
        "outcome": "ok", "http_status": 200, "version": 1, "check": str(check.uuid),
        "kind": "password", "trigger": "dashboard",
    }
    assert stored.access_token not in audit_text()
    assert audit_verify().ok


def test_a_wrong_password_is_recorded_as_invalid_credentials_without_the_secret(
        sandbox_simulator, db):
    version = onboard(password="wrong-" + KNOWN_PASSWORD)
    check = check_run(package=version.package, trigger=CheckTrigger.COMMAND)
    assert check.outcome == Outcome.INVALID_CREDENTIALS
    assert check.http_status == 400
    assert "user name or password" in check.message
    assert check.access_token is None and check.token_fingerprint == ""
    assert KNOWN_PASSWORD not in check.message and KNOWN_PASSWORD not in audit_text()
    assert AuditEvent.objects.get(action="check").details["outcome"] == "invalid_credentials"


def test_a_wrong_client_secret_is_recorded_as_invalid_client(sandbox_simulator, db):
    version = onboard(client_secret="other-" + KNOWN_SECRET)
    check = check_run(package=version.package)
    assert check.outcome == Outcome.INVALID_CLIENT
    assert "client ID or client secret" in check.message
    assert KNOWN_SECRET not in check.message and KNOWN_SECRET not in audit_text()


def test_an_unreachable_host_is_recorded_as_a_check(settings, sandbox_version):
    settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                       "sandbox": "http://127.0.0.1:9"}
    check = check_run(package=sandbox_version.package)
    assert check.outcome == Outcome.UNREACHABLE
    assert ConnectivityCheck.objects.count() == 1


def test_rate_limiting_records_when_to_retry(sandbox_simulator, sandbox_version):
    sandbox_simulator.rate_limit_next(1, retry_after=45)
    check = check_run(package=sandbox_version.package)
    assert check.outcome == Outcome.RATE_LIMITED
    assert check.retry_after == 45


def test_failing_since_is_set_by_the_first_failure_and_cleared_by_success(
        sandbox_simulator, sandbox_version, no_dedupe):
    package = sandbox_version.package
    sandbox_simulator.rate_limit_next(2)
    first = check_run(package=package)
    check_run(package=package)
    package.refresh_from_db()
    assert package.failing_since == first.sent_at
    check_run(package=package)
    package.refresh_from_db()
    assert package.failing_since is None


def test_only_the_newest_success_keeps_its_tokens(sandbox_simulator, sandbox_version, no_dedupe):
    package = sandbox_version.package
    older = check_run(package=package)
    sandbox_simulator.rate_limit_next(1)
    failed = check_run(package=package)
    assert check_live_token(package=package) == older  # a failure leaves the live token alone
    newer = check_run(package=package)
    older.refresh_from_db()
    assert older.access_token is None and older.refresh_token is None
    assert raw_column(older, "access_token") is None
    assert newer.access_token is not None
    assert check_live_token(package=package) == newer
    assert list(check_history(package=package)) == [newer, failed, older]


def test_an_expired_token_is_not_live(sandbox_simulator, sandbox_version):
    check = check_run(package=sandbox_version.package)
    ConnectivityCheck.objects.filter(pk=check.pk).update(
        expires_at=check.sent_at - timedelta(seconds=1))
    assert check_live_token(package=sandbox_version.package) is None


def test_two_clicks_in_a_row_run_one_check(sandbox_simulator, sandbox_version):
    first = check_run(package=sandbox_version.package)
    second = check_run(package=sandbox_version.package)
    assert second == first
    assert sandbox_simulator.token_requests == 1
    assert ConnectivityCheck.objects.count() == 1
    assert AuditEvent.objects.filter(action="check").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_clicks_run_one_check(sandbox_simulator):
    sandbox_simulator.latency_ms = 300
    package = onboard().package
    results: list[ConnectivityCheck] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        barrier.wait()
        try:
            results.append(check_run(package=OnboardingPackage.objects.get(pk=package.pk)))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0].pk == results[1].pk
    assert sandbox_simulator.token_requests == 1
    assert ConnectivityCheck.objects.count() == 1


def test_a_scheduled_check_neither_waits_for_nor_touches_the_double_click_claim(
        sandbox_simulator, sandbox_version):
    # The scheduler claims each package once per round itself; a dashboard check running at the
    # same time keeps its own claim.
    package = sandbox_version.package
    busy = timezone.now() + timedelta(minutes=5)
    OnboardingPackage.objects.update(check_busy_until=busy)
    first = check_run(package=package, trigger=CheckTrigger.SCHEDULED)
    second = check_run(package=package, trigger=CheckTrigger.SCHEDULED)
    assert first != second and sandbox_simulator.token_requests == 2
    assert OnboardingPackage.objects.get().check_busy_until == busy


def test_a_check_after_the_grace_period_runs_again(sandbox_simulator, sandbox_version):
    first = check_run(package=sandbox_version.package)
    OnboardingPackage.objects.update(check_busy_until=None)
    assert check_run(package=sandbox_version.package) != first
    assert sandbox_simulator.token_requests == 2


def test_refresh_trades_the_held_refresh_token_and_is_audited(
        sandbox_simulator, sandbox_version, lead, no_dedupe):
    package = sandbox_version.package
    first = check_run(package=package, actor=lead)
    refreshed = check_refresh(package=package, actor=lead)
    assert refreshed.kind == CheckKind.REFRESH
    assert refreshed.outcome == Outcome.OK
    assert refreshed.access_token not in (None, first.access_token)
    first.refresh_from_db()
    assert first.refresh_token is None and first.access_token is None
    event = AuditEvent.objects.filter(action="refresh").get()
    assert event.details["check"] == str(refreshed.uuid)
    # A refresh is no token exchange of the credentials: the state still rests on the first.
    status = package_statuses(integrations=[package.integration])[0]
    assert status.package.last_exchange_id == first.pk
    assert status.state == ProductionState.VERIFIED


def test_a_rejected_refresh_token_is_forgotten(sandbox_simulator, sandbox_version, no_dedupe):
    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator._by_refresh.clear()  # the simulator forgets it, as if revoked
    refused = check_refresh(package=package)
    assert refused.outcome == Outcome.INVALID_CREDENTIALS
    assert not ConnectivityCheck.objects.filter(refresh_token__isnull=False).exists()
    with pytest.raises(CheckError, match="No refresh token"):
        check_refresh(package=package)


def test_a_refresh_token_of_an_earlier_version_is_neither_offered_nor_used(
        sandbox_simulator, sandbox_version, no_dedupe):

    package = sandbox_version.package
    assert check_run(package=package).ok
    assert package_statuses(integrations=[package.integration])[0].refresh_held
    onboard(password="a-new-password-123")  # version 2, not checked yet
    assert not package_statuses(integrations=[package.integration])[0].refresh_held
    with pytest.raises(CheckError, match="issued for an earlier version"):
        check_refresh(package=package)
    assert sandbox_simulator.token_requests == 1  # nothing was sent


def test_a_rejected_refresh_token_does_not_mark_working_credentials_as_failing(
        sandbox_simulator, sandbox_version, no_dedupe):
    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator._by_refresh.clear()
    assert check_refresh(package=package).outcome == Outcome.INVALID_CREDENTIALS
    package.refresh_from_db()
    assert package.failing_since is None
    # A failed password grant still does.
    sandbox_simulator.accounts.clear()
    assert not check_run(package=package).ok
    package.refresh_from_db()
    assert package.failing_since is not None


def test_refresh_without_a_refresh_token_says_so(sandbox_simulator, sandbox_version):
    with pytest.raises(CheckError, match="No refresh token is held for Sandbox"):
        check_refresh(package=sandbox_version.package)
    assert ConnectivityCheck.objects.count() == 0


def test_missing_credentials_are_refused_and_nothing_is_recorded(sandbox_simulator, db):
    version = onboard()
    type(version).objects.filter(pk=version.pk).update(password=None)
    with pytest.raises(CheckError, match="no password"):
        check_run(package=version.package)
    assert ConnectivityCheck.objects.count() == 0
    assert OnboardingPackage.objects.get().check_busy_until is None


def test_undecryptable_credentials_are_refused_without_a_secret(sandbox_simulator,
                                                                sandbox_version, settings):
    settings.FIELD_ENCRYPTION_KEYS = generate_key_entry("other")
    with pytest.raises(CheckError, match="cannot be decrypted") as excinfo:
        check_run(package=sandbox_version.package)
    assert KNOWN_SECRET not in str(excinfo.value)
    assert ConnectivityCheck.objects.count() == 0


def test_an_auditor_may_not_check(sandbox_simulator, sandbox_version, auditor):
    with pytest.raises(PermissionDenied):
        check_run(package=sandbox_version.package, actor=auditor)
    assert sandbox_simulator.token_requests == 0


def test_a_lead_may_not_check_production(sandbox_simulator, lead, db):
    version = onboard(environment=Environment.PRODUCTION)
    with pytest.raises(PermissionDenied):
        check_run(package=version.package, actor=lead)


def test_the_demo_account_checks_ok(sandbox_simulator, db):
    version = onboard(name="Demo", client_id=DEMO_ACCOUNT.client_id,
                      client_secret=DEMO_ACCOUNT.client_secret, username=DEMO_ACCOUNT.username,
                      password=DEMO_ACCOUNT.password)
    assert check_run(package=version.package).ok


def test_a_version_saved_right_after_a_check_gets_its_own_check(sandbox_simulator,
                                                                 sandbox_version):
    first = check_run(package=sandbox_version.package)
    newer = onboard(location_id="loc-2")
    second = check_run(package=newer.package)
    assert second != first and second.version == newer
    assert sandbox_simulator.token_requests == 2


def test_a_refresh_right_after_a_check_is_still_a_refresh(sandbox_simulator, sandbox_version):
    first = check_run(package=sandbox_version.package)
    refreshed = check_refresh(package=sandbox_version.package)
    assert refreshed != first and refreshed.kind == CheckKind.REFRESH


# --- PostgreSQL: token lookups read only the checks that hold a token -------------------------

TOKEN_TESTS = ('"access_token" IS NOT NULL', '"refresh_token" IS NOT NULL')


@postgres_only
def test_every_token_lookup_searches_the_index_of_checks_holding_tokens(
        sandbox_simulator, sandbox_version, no_dedupe):
    from onboarding.services.status import packages_with_last_check

    package = sandbox_version.package
    history = [ConnectivityCheck(package=package, version=sandbox_version, outcome=Outcome.OK,
                                 message="ok", sent_at=timezone.now() - timedelta(hours=n))
               for n in range(1, 500)]  # a long history, none of it holding a token any more
    ConnectivityCheck.objects.bulk_create(history)
    run = [lambda: check_run(package=package), lambda: check_refresh(package=package),
           lambda: check_live_token(package=package),
           lambda: list(packages_with_last_check(OnboardingPackage.objects.filter(pk=package.pk)))]
    lookups = [sql for step in run for sql in queries(step)
               if any(test in sql for test in TOKEN_TESTS)]
    # The clearing of older tokens by a check and by a refresh, the refresh token's lookup, the
    # live token, and whether "Refresh token" is offered.
    assert len(lookups) >= 5, lookups
    for sql in lookups:
        # Read through (a condition on package_id), or read whole: it holds only those checks.
        assert "check_package_tokens" in index_scans(
            sql, analyze=(ConnectivityCheck._meta.db_table,)), sql


def test_a_refused_refresh_leaves_a_passing_package_verified(sandbox_simulator, sandbox_version,
                                                             no_dedupe):
    # iQmetrix forgets refresh tokens (a restart): that says nothing about the credentials, so
    # the package neither starts failing nor stops being verified.

    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator._by_refresh.clear()
    assert check_refresh(package=package).outcome == Outcome.INVALID_CREDENTIALS
    status = package_statuses(integrations=[package.integration])[0]
    assert status.package.failing_since is None
    assert status.state == ProductionState.VERIFIED


def test_a_passing_refresh_after_a_failed_check_does_not_verify_the_package(
        sandbox_simulator, sandbox_version, no_dedupe):
    # A refresh proves only the client credentials: the failed token exchange still stands, as
    # the promotion guard and failing_since have it.

    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator.rate_limit_next(1)
    assert not check_run(package=package).ok
    assert check_refresh(package=package).ok
    status = package_statuses(integrations=[package.integration])[0]
    assert status.package.failing_since is not None
    assert status.state == ProductionState.UNVERIFIED


def test_the_countdown_is_of_the_token_the_reveal_page_hands_out(sandbox_simulator,
                                                                 sandbox_version, no_dedupe):
    # The status's expiry and the live token are one definition: the newest pass still holding
    # its token. Neither a refused refresh nor a failed exchange after a pass takes it away.

    package = sandbox_version.package

    def expiry():
        return package_statuses(integrations=[package.integration])[0].expires_at

    passed = check_run(package=package)
    assert expiry() == check_live_token(package=package).expires_at == passed.expires_at
    sandbox_simulator._by_refresh.clear()
    assert check_refresh(package=package).outcome == Outcome.INVALID_CREDENTIALS
    assert expiry() == check_live_token(package=package).expires_at == passed.expires_at
    sandbox_simulator.rate_limit_next(1)
    assert not check_run(package=package).ok
    assert expiry() == check_live_token(package=package).expires_at == passed.expires_at

    again = check_run(package=package)
    refreshed = check_refresh(package=package)
    assert expiry() == check_live_token(package=package).expires_at == refreshed.expires_at
    assert refreshed.expires_at != again.expires_at


def test_only_a_refused_refresh_reads_as_a_refused_refresh_token(sandbox_simulator,
                                                                 sandbox_version, no_dedupe):
    from onboarding.services.status import check_outcome_label

    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator._by_refresh.clear()
    refused = check_refresh(package=package)
    assert check_outcome_label(check=refused) == "Refresh token refused"
    onboard(password="not-the-password")  # now the password really is refused
    wrong = check_run(package=package)
    assert wrong.outcome == refused.outcome == Outcome.INVALID_CREDENTIALS
    assert check_outcome_label(check=wrong) == "Invalid user name or password"
