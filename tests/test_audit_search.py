"""The audit log's filters: whole days of the site's time zone, and (on PostgreSQL) each filter
searched through an index rather than by reading the whole log."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from onboarding.models import AuditEvent
from onboarding.services.audit import audit_search
from tests.conftest import onboard
from tests.explain import index_scans, last_query, postgres_only

DAY = date(2026, 3, 10)
TABLE = AuditEvent._meta.db_table


def add_events(rows: list[dict[str, Any]]) -> list[AuditEvent]:
    """Events with the given fields, straight into the table: only the filters are tested here,
    not the chain (the test's transaction takes them away again). Their positions start far
    beyond the chain head, so events the test writes as usual (a sign-in) take theirs."""
    first = (AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0)
    first += 1_000_000
    return AuditEvent.objects.bulk_create(
        AuditEvent(seq=first + n, prev_hmac="0" * 64, hmac=f"{first + n:064x}",
                   **{"action": "check", **row})
        for n, row in enumerate(rows)
    )


def around_midnights(zone: str) -> list[dict[str, Any]]:
    """Instants on both sides of each local midnight from DAY - 1 to DAY + 2, and of each UTC
    midnight, where a date in the wrong zone would put an event on the wrong day."""
    instants = []
    for offset in range(-1, 3):
        day = DAY + timedelta(days=offset)
        for tz in (ZoneInfo(zone), ZoneInfo("UTC")):
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            instants += [midnight - timedelta(microseconds=1), midnight,
                         midnight + timedelta(hours=12)]
    return [{"at": at} for at in instants]


RANGES = [(DAY, DAY), (DAY - timedelta(days=1), DAY), (DAY, DAY + timedelta(days=1)),
          (None, DAY), (DAY, None), (DAY + timedelta(days=1), DAY + timedelta(days=1))]


@pytest.mark.parametrize("zone", ["America/Regina", "Pacific/Auckland"])
def test_the_date_filter_keeps_whole_days_of_the_site_time_zone(db, settings, zone):
    settings.TIME_ZONE = zone
    add_events(around_midnights(zone))
    for since, until in RANGES:
        found = set(audit_search(since=since, until=until).values_list("seq", flat=True))
        expected = {e.seq for e in AuditEvent.objects.all()
                    if (since is None or timezone.localtime(e.at).date() >= since)
                    and (until is None or timezone.localtime(e.at).date() <= until)}
        # ... and the database's own date of each event in that zone, as the filter was before.
        by_cast = AuditEvent.objects.all()
        if since:
            by_cast = by_cast.filter(at__date__gte=since)
        if until:
            by_cast = by_cast.filter(at__date__lte=until)
        assert expected, (since, until)
        assert found == expected == set(by_cast.values_list("seq", flat=True)), (since, until)


def test_the_calendars_first_and_last_days_are_a_range_not_an_error(client, settings, auditor):
    settings.TIME_ZONE = "Pacific/Auckland"  # its year 1 starts before UTC's can
    add_events(around_midnights("Pacific/Auckland"))
    client.force_login(auditor)
    response = client.get("/audit/?since=0001-01-01&until=9999-12-31")
    assert response.status_code == 200
    assert response.context["page"].paginator.count == AuditEvent.objects.count()


def test_the_audit_page_says_which_time_zone_its_dates_are_in(client, settings, auditor):
    settings.TIME_ZONE = "America/Regina"
    client.force_login(auditor)
    page = client.get("/audit/").content.decode()
    assert "whole days in the site's time zone, America/Regina" in page
    assert "From the start of this day, America/Regina time." in page
    assert "Through the end of this day, America/Regina time." in page
    assert "in your browser's time zone" in page


# --- PostgreSQL: the filters search an index --------------------------------------------------

@pytest.fixture
def long_log(db) -> list[AuditEvent]:
    """Two events a day for a year, by forty people, on forty integrations."""
    start = datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC"))
    return add_events([{"at": start + timedelta(hours=12 * n), "actor_name": f"person{n % 40}",
                        "integration_name": f"Integration {n % 40}"} for n in range(730)])


@postgres_only
def test_a_date_filtered_count_searches_the_index_on_at(long_log, settings):
    settings.TIME_ZONE = "America/Regina"
    sql = last_query(lambda: audit_search(since=date(2025, 6, 1), until=date(2025, 6, 2)).count())
    # Searched: an index read whole, the date of each row worked out, would be no better.
    assert "at >=" in index_scans(sql, analyze=(TABLE,)).get("audit_at", "")


@postgres_only
def test_the_actor_filter_searches_an_index_case_insensitively(long_log):
    sql = last_query(lambda: audit_search(actor="PERSON7").count())
    assert "upper" in index_scans(sql, analyze=(TABLE,)).get("audit_actor_upper", "")
    # ... and a page of them, newest first, reads that index in order.
    sql = last_query(lambda: list(audit_search(actor="PERSON7")[:50]))
    assert "upper" in index_scans(sql, analyze=(TABLE,)).get("audit_actor_upper", "")
    assert audit_search(actor="PERSON7").count() == len(
        [e for e in long_log if e.actor_name == "person7"])


@postgres_only
def test_the_integration_filter_searches_indexes_for_name_and_uuid(long_log):
    integration = onboard("Integration 7").package.integration
    sql = last_query(lambda: audit_search(integration="integration 7").count())
    searches = index_scans(sql, analyze=(TABLE,))
    assert "upper" in searches.get("audit_integration_upper", ""), searches
    assert any("integration_uuid =" in condition for condition in searches.values()), searches
    expected = {e.seq for e in AuditEvent.objects.all()
                if e.integration_name == "Integration 7" or e.integration_uuid == integration.uuid}
    assert set(audit_search(integration="integration 7").values_list("seq", flat=True)) == expected


def test_the_audit_page_shows_details_in_words_and_the_export_keeps_the_codes(client, auditor):
    from onboarding.services.audit import audit_record

    audit_record(action="promotion", target="v2", details={
        "changed": ["client_id", "notes"], "copied_credentials": True, "previous_version": None})
    client.force_login(auditor)
    page = client.get("/audit/").content.decode()
    assert "changed: client ID, notes; copied credentials: yes; previous version: none" in page
    assert "client_id" not in page and "copied_credentials=True" not in page
    export = client.get("/audit/export.jsonl")
    body = b"".join(export.streaming_content) if export.streaming else export.content
    assert b'"copied_credentials": true' in body


def test_the_name_filters_say_they_match_whole_names(client, auditor):
    # "acme" or "le" found "0 events" with no hint that a whole name is needed.
    client.force_login(auditor)
    html = client.get("/audit/?actor=le").content.decode()
    assert 'id="id_actor_helptext"' in html and "The whole user name, in any case." in html
    assert "The whole name or slug, in any case." in html
