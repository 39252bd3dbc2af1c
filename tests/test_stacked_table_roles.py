"""Tables stacked into blocks on phones keep their table semantics for screen readers.

On narrow screens the data tables in a `.table-wrap` become stacked blocks (`display: block`,
see the CSS). Safari/VoiceOver drops a table's native roles once its elements are no longer
displayed as table parts, so each element carries its role explicitly (table, rowgroup, row,
columnheader/rowheader, cell). The walk reuses the URL walker, so a page added later is covered.
"""

from __future__ import annotations

from html.parser import HTMLParser

from django.test import Client

from tests.test_url_walk import every_page, world  # noqa: F401  (world is a fixture)

ROLES = {"table": {"table"}, "thead": {"rowgroup"}, "tbody": {"rowgroup"}, "tr": {"row"},
         "th": {"columnheader", "rowheader"}, "td": {"cell"}}


class _StackedTables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.wrap_depth: list[int] = []  # the div depth of each open .table-wrap
        self.divs = 0
        self.tables = 0
        self.missing: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div":
            self.divs += 1
            if "table-wrap" in (found.get("class") or "").split():
                self.wrap_depth.append(self.divs)
        elif self.wrap_depth and tag in ROLES:
            self.tables += tag == "table"
            if found.get("role") not in ROLES[tag]:
                self.missing.append(f"<{tag} role={found.get('role')!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            if self.wrap_depth and self.wrap_depth[-1] == self.divs:
                self.wrap_depth.pop()
            self.divs -= 1


def stacked_tables(html: str) -> _StackedTables:
    parser = _StackedTables()
    parser.feed(html)
    return parser


def test_the_checker_finds_a_cell_without_its_role():
    html = ('<div class="table-wrap"><table role="table"><tr role="row"><td>x</td></tr>'
            "</table></div>")
    assert stacked_tables(html).missing == ["<td role=None>"]
    assert stacked_tables("<table><tr><td>outside a wrap</td></tr></table>").missing == []


def test_every_stacked_table_carries_its_roles(world, superuser):  # noqa: F811
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    problems: list[str] = []
    pages_with_tables = set()
    for route, url, response in every_page(client, world):
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        found = stacked_tables(response.content.decode())
        if found.tables:
            pages_with_tables.add(route.name)
        problems += [f"GET {url}: {item}" for item in found.missing]
    # The audit log, the access report, check history and the version and promotion histories.
    assert len(pages_with_tables) >= 4, pages_with_tables
    assert not problems, "\n".join(problems[:20])
