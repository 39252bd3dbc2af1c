"""Which indexes PostgreSQL's planner searches for a query: EXPLAIN, asked in a test.

Test tables hold a few hundred rows, where a sequential scan is always cheapest, so the plan is
asked for with sequential scans priced out (for this transaction only): what is left shows
whether an index *can* serve the query. Whether it searches the index or reads it whole (no
"Index Cond": what a query no index fits gets, which only a partial index makes cheap) is the
test's to judge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="query plans are PostgreSQL's")


def last_query(run: Callable[[], Any]) -> str:
    """The SQL of the last query `run` makes, its parameters filled in."""
    with CaptureQueriesContext(connection) as captured:
        run()
    return captured.captured_queries[-1]["sql"]


def queries(run: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [query["sql"] for query in captured.captured_queries]


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def index_scans(sql: str, *, analyze: tuple[str, ...] = ()) -> dict[str, str]:
    """Index name → its search condition ("" when read whole), for every index the plan of
    `sql` reads.

    `analyze` names tables to gather statistics of first, so the planner knows what the test
    put in them (how few rows hold a token, how many events fall on a day)."""
    with connection.cursor() as cursor:
        for table in analyze:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            (document,) = cursor.fetchone()
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")
    if isinstance(document, str):
        document = json.loads(document)
    found: dict[str, str] = {}
    for node in _nodes(document[0]["Plan"]):
        if "Index Name" in node:
            condition = node.get("Index Cond", "")
            found[node["Index Name"]] = found.get(node["Index Name"]) or condition
    return found
