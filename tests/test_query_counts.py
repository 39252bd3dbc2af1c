"""The overview lists every integration with a fixed number of queries, however many there are."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.models import Environment
from onboarding.services import checks as checks_service
from onboarding.services.checks import check_run
from tests.conftest import onboard

MAX_QUERIES = 15

# Marked, not only reached through fixtures: the users are looked up by name at run time, and
# pytest-django runs database tests before transactional ones (whose flush drops the groups).
pytestmark = pytest.mark.django_db


@pytest.fixture
def both_environments(sandbox_simulator, settings, monkeypatch):
    settings.IQMETRIX_ACCOUNTS_URLS = {"sandbox": sandbox_simulator.url,
                                       "production": sandbox_simulator.url}
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    return sandbox_simulator


def add_integrations(start: int, stop: int) -> None:
    """Integrations with a checked package in each environment; every third one failing."""
    for n in range(start, stop):
        for env in Environment:
            broken = {"password": "not-the-password"} if n % 3 == 2 else {}
            package = onboard(f"Integration {n:03d}", environment=env, **broken).package
            check_run(package=package, fetch_me=False)


def overview_queries(client) -> tuple[int, str]:
    """The queries of one visit, and its page without what differs between any two visits
    (the masked CSRF token, the countdowns' seconds)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    page = re.sub(r'(name="csrfmiddlewaretoken" value=)"[^"]+"', r"\1", response.content.decode())
    return len(captured), re.sub(r'(role="timer"[^>]*>)[^<]*', r"\1", page)


@pytest.mark.parametrize("who", ["lead", "release_manager", "superuser"])
def test_the_overview_makes_the_same_queries_for_1_and_30_integrations(
        both_environments, client, who, request):
    """Both when the rows are rendered (after a change) and when they come from the cache."""
    client.force_login(request.getfixturevalue(who))
    add_integrations(0, 1)
    client.get("/")  # first visit: session bookkeeping that later visits do not repeat
    cache.clear()
    one, page = overview_queries(client)
    assert "Integration 000" in page
    one_cached, cached_page = overview_queries(client)
    assert cached_page == page

    add_integrations(1, 30)
    thirty, page = overview_queries(client)
    assert "Integration 024" in page  # the first page: 25 integrations
    thirty_cached, cached_page = overview_queries(client)
    assert cached_page == page

    assert one == thirty, f"{one} queries for 1 integration, {thirty} for 30"
    assert one_cached == thirty_cached, f"{one_cached} for 1 from the cache, {thirty_cached} for 30"
    assert thirty_cached < thirty <= MAX_QUERIES


def test_the_overview_stays_within_the_query_budget_with_nothing_to_show(client, lead):
    client.force_login(lead)
    client.get("/")
    count, _ = overview_queries(client)
    assert count <= MAX_QUERIES


def test_the_integration_page_makes_the_same_queries_for_1_and_10_rollbacks(
        client, superuser, release_manager):
    """The Production card lists the newest promotions and rollbacks: their versions and who
    made them are read with them, not three queries a row."""
    from onboarding.services.promotion import rollback_apply

    version = onboard("Acme POS", environment=Environment.PRODUCTION)
    onboard("Acme POS", environment=Environment.PRODUCTION, location_id="loc-2")
    integration = version.package.integration

    def roll_back(times: int) -> None:
        for _ in range(times):
            rollback_apply(integration=integration, actor=release_manager,
                           to_version_number=1, reason="back to the first")

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/integrations/{integration.uuid}/")
        assert response.status_code == 200
        return len(captured)

    client.force_login(superuser)
    roll_back(1)
    client.get(f"/integrations/{integration.uuid}/")  # session bookkeeping of a first visit
    one = page_queries()
    roll_back(9)
    ten = page_queries()
    assert one == ten, f"{one} queries for 1 rollback, {ten} for 10"
