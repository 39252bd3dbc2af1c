"""The audit log's filters: (on PostgreSQL) each filter searched through an index rather than by
reading the whole log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from onboarding.models import AuditEvent
from onboarding.services.audit import audit_search
from tests.conftest import onboard
from tests.explain import index_scans, last_query, postgres_only

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


# --- PostgreSQL: the filters search an index --------------------------------------------------

@pytest.fixture
def long_log(db) -> list[AuditEvent]:
    """Two events a day for a year, by forty people, on forty integrations."""
    start = datetime(2025, 1, 1, tzinfo=ZoneInfo("UTC"))
    return add_events([{"at": start + timedelta(hours=12 * n), "actor_name": f"person{n % 40}",
                        "integration_name": f"Integration {n % 40}"} for n in range(730)])


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
