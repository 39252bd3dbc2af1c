"""The data tables on a phone: below 600 px each row is a stacked block, every cell on its own line
after its column name (data-label), so nothing is off to the right of the screen. On a desktop
too, a long unbroken reason (a pasted URL) wraps inside its cell instead of widening the table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from onboarding.services.promotion import promotion_apply
from tests.conftest import onboard
from tests.e2e.pages import login
from tests.test_promotion import passing_check

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
# A reason is free text of up to 2,000 characters: a pasted link is one word that long.
LONG_URL = "https://tickets.example.com/browse/" + "A1b2C3d4" * 245

# Every table cell, and every button or field on the page, whose right edge is past the
# viewport's (the page itself does not scroll sideways: .table-wrap scrolls instead).
OFF_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const describe = (el) => `${el.tagName.toLowerCase()} ${JSON.stringify(
    (el.getAttribute('data-label') || '') + ': ' + el.textContent.trim().slice(0, 40))}`;
  return [...document.querySelectorAll('tbody td, tbody th, button, input:not([type=hidden])')]
    .filter((el) => el.getBoundingClientRect().right > width + 0.5)
    .map((el) => `${describe(el)} ends at ${Math.round(el.getBoundingClientRect().right)} px`);
}"""


def shot(page, name: str) -> None:
    """With NARROW_SCREENSHOTS=<dir>, a full-page PNG of what the test looked at."""
    if folder := os.environ.get("NARROW_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True,
                        animations="disabled")


def test_tables_fit_a_360_px_phone(page, superuser, release_manager):
    sandbox = onboard()
    passing_check(sandbox)
    integration = sandbox.package.integration
    onboard(environment="production", client_id="prod-client-998877", company_id=555)
    promotion_apply(integration=integration, actor=release_manager, reason="Go live",
                    copy_credentials=False, reviewed_sandbox_version=None,
                    reviewed_production_version=None)  # Production v2: v1 can be rolled back to

    page.set_viewport_size(PHONE)
    login(page, "root")

    page.goto("/audit/")
    expect(page.locator("table.audit-log tbody tr").first).to_be_visible()
    shot(page, "audit-log")
    assert page.evaluate(OFF_SCREEN) == []

    page.goto(f"/integrations/{integration.uuid}/production/history/")
    rollback = page.get_by_role("button", name="Roll back to v1")
    expect(rollback).to_be_visible()
    shot(page, "production-history")
    assert page.evaluate(OFF_SCREEN) == []
    # The header row is hidden from sight only: it still names the columns for screen readers.
    expect(page.locator("table.versions").get_by_role("columnheader", name="Client ID")
           ).to_have_count(1)
    box = rollback.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_a_long_unbroken_reason_wraps_in_its_cell_at_desktop_width(page, superuser,
                                                                    release_manager):
    sandbox = onboard()
    passing_check(sandbox)
    integration = sandbox.package.integration
    onboard(environment="production", client_id="prod-client-998877", company_id=555)
    assert len(LONG_URL) <= 2000
    promotion_apply(integration=integration, actor=release_manager, reason=LONG_URL,
                    copy_credentials=False, reviewed_sandbox_version=None,
                    reviewed_production_version=None)

    page.set_viewport_size(DESKTOP)
    login(page, "root")
    for url, table in ((f"/integrations/{integration.uuid}/production/history/",
                        "table.promotions"),
                       ("/audit/", "table.audit-log")):
        page.goto(url)
        expect(page.locator(f"{table} tbody tr").first).to_be_visible()
        shot(page, "desktop-" + table.split(".")[1])
        assert page.evaluate(OFF_SCREEN) == [], url
    # The other columns keep readable widths: the "What" sentence is not squeezed to a word.
    page.goto(f"/integrations/{integration.uuid}/production/history/")
    what = page.locator("table.promotions tbody td[data-label=What]").first.bounding_box()
    assert what["width"] > 150


WIDER_THAN_THE_SCREEN = """() => document.documentElement.scrollWidth
  - document.documentElement.clientWidth"""


def test_a_promotion_reason_reads_across_the_phone_not_a_letter_a_line(page, superuser,
                                                                      release_manager):
    sandbox = onboard()
    passing_check(sandbox)
    integration = sandbox.package.integration
    promotion_apply(integration=integration, actor=release_manager, reason="Second promote",
                    copy_credentials=True, reviewed_sandbox_version=None,
                    reviewed_production_version=None)
    page.set_viewport_size(PHONE)
    login(page, "root")
    page.goto(f"/integrations/{integration.uuid}/production/history/")
    reason = page.locator("td.promotion-reason").first
    expect(reason).to_contain_text("Second promote")
    shot(page, "promotion-reason")
    # The whole stacked row's width, as every other cell; the desktop share (35 %) of a 360 px
    # row left a dozen pixels for the text beside the label.
    row = page.locator("table.promotions tbody tr").first.bounding_box()
    assert reason.bounding_box()["width"] >= 0.9 * row["width"]
    assert reason.bounding_box()["height"] < 80  # one or two lines, not fourteen


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_long_unbroken_integration_name_wraps_instead_of_widening_the_page(page, superuser,
                                                                             viewport):
    name = "Ünïcødé Störe 🛒 " + "x" * 100
    integration = onboard(name).package.integration
    page.set_viewport_size(viewport)
    login(page, "root")
    for path in ("/", f"/integrations/{integration.uuid}/"):
        page.goto(path)
        expect(page.get_by_role("heading", name=name).first).to_be_visible()
        shot(page, f"long-name-{viewport['width']}-{path.count('/')}")
        assert page.evaluate(WIDER_THAN_THE_SCREEN) <= 0, path
