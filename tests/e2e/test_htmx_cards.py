"""Check now and Refresh token in a real browser, beyond the happy path: an ended session, a
failed request, keyboard focus after the swap, and what is disabled while a check runs."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from onboarding.services import checks
from onboarding.services.checks import check_run
from tests.conftest import onboard
from tests.e2e.pages import demo_credentials, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _integration_page(integration) -> str:
    return f"/integrations/{integration.uuid}/"


def test_check_now_after_the_session_ended_leads_to_sign_in_and_back(page, lead, accounts_host):
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    login(page, "lead")
    page.goto(_integration_page(integration))
    Session.objects.all().delete()  # as if it had been idle for longer than the timeout

    page.get_by_role("button", name="Check now").click()
    # The whole page goes to sign-in (htmx would otherwise swap the sign-in form into the card).
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/integrations/"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.locator(".notice")).to_contain_text("Your session ended")

    page.get_by_label("User name").fill("lead")
    page.get_by_label("Password").fill("unused-in-tests-1234")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(_integration_page(integration)) + "$"))
    expect(page.get_by_role("heading", name="Acme POS", level=1)).to_be_visible()


@pytest.mark.parametrize("where", ["overview", "integration page"])
@pytest.mark.parametrize("failure", ["network", 403, 404])
def test_a_failed_check_request_says_so_in_its_cell(page, lead, where, failure):
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    login(page, "lead")
    if where == "integration page":
        page.goto(_integration_page(integration))

    def fail(route) -> None:
        if failure == "network":
            route.abort()
        else:
            route.fulfill(status=failure, body="refused")

    page.route("**/check/", fail)
    page.get_by_role("button", name="Check now").click()
    expected = {"network": "could not be reached", 403: "You may not do this (HTTP 403)",
                404: "The request failed (HTTP 404)"}[failure]
    sandbox = page.get_by_role("article", name="Sandbox")
    expect(sandbox.locator(".card-error")).to_contain_text(expected)


@pytest.mark.parametrize("where", ["overview", "integration page"])
def test_keyboard_focus_stays_on_check_now_and_the_outcome_is_announced_once(
        page, lead, accounts_host, where):
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    login(page, "lead")
    if where == "integration page":
        page.goto(_integration_page(integration))
    sandbox = page.get_by_role("article", name="Sandbox")
    sandbox.get_by_role("button", name="Check now").focus()
    page.keyboard.press("Enter")
    expect(sandbox).to_contain_text("Passed: OK")
    # The swapped-in card's own Check now button has focus, not <body>.
    focused = page.evaluate("""() => {
        const el = document.activeElement;
        return {tag: el.tagName, text: el.textContent, inCard: !!el.closest('.env-card'),
                connected: el.isConnected};
    }""")
    assert focused == {"tag": "BUTTON", "text": "Check now", "inCard": True, "connected": True}
    # Said once, by the page's announcer: the card's outcome is no live region of its own.
    expect(page.locator("#announcer")).to_contain_text("Passed: OK")
    expect(sandbox.locator(".last-check")).to_contain_text("Passed: OK")
    expect(page.get_by_role("status").filter(has_text="Passed: OK")).to_have_count(1)



@pytest.mark.parametrize("where", ["overview", "integration page"])
def test_the_outcome_is_announced_through_a_live_region_that_was_already_there(
        page, lead, accounts_host, where):
    # The card's own status region is new after the swap, which screen readers do not announce;
    # the page-wide #announcer is there from the start and receives the outcome.
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    login(page, "lead")
    if where == "integration page":
        page.goto(_integration_page(integration))
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("role", "status")
    expect(announcer).to_have_text("")
    announcer.evaluate("el => { window.announcerBefore = el; }")
    page.get_by_role("article", name="Sandbox").get_by_role("button", name="Check now").click()
    expected = ("Sandbox: Passed: OK" if where == "integration page"
                else "Acme POS: Sandbox: Passed: OK")
    expect(announcer).to_contain_text(expected)
    expect(announcer).to_contain_text("CST")  # the time as the card shows it
    assert announcer.evaluate("el => el === window.announcerBefore")
    # Seen too: the new card is highlighted once (a fast answer looks like the last one).
    expect(page.get_by_role("article", name="Sandbox")).to_have_class(re.compile("just-updated"))

@pytest.mark.parametrize("where", ["overview", "integration page"])
def test_a_failed_outcome_is_announced_with_a_space_between_time_and_message(
        page, lead, accounts_host, where):
    # The overview's cell put the message right after the time ("…04:29 PM CSTiQmetrix
    # rejected…"): the message is a block on screen, but the announcer reads the text.
    integration = onboard("Acme POS", **demo_credentials(password="not-the-password")
                          ).package.integration
    login(page, "lead")
    if where == "integration page":
        page.goto(_integration_page(integration))
    sandbox = page.get_by_role("article", name="Sandbox")
    sandbox.get_by_role("button", name="Check now").click()
    expect(sandbox).to_contain_text("Failed")
    shown_time = sandbox.locator(".last-check time").text_content().strip()
    message = sandbox.locator(".last-check .check-message").text_content().strip()
    assert message
    expect(page.locator("#announcer")).to_contain_text(f"{shown_time} {message}")


def test_the_recent_checks_table_follows_check_now_on_the_integration_page(page, lead,
                                                                            accounts_host):
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    login(page, "lead")
    page.goto(_integration_page(integration))
    recent = page.locator("#env-sandbox .recent-checks")
    expect(recent).to_contain_text("No checks yet.")
    page.get_by_role("article", name="Sandbox").get_by_role("button", name="Check now").click()
    expect(recent.locator("table tbody tr")).to_have_count(1)
    expect(recent).to_contain_text("Passed: OK")
    # app.js shows the time in the browser's zone in the out-of-band table too.
    expect(recent.locator("time").first).to_contain_text("CST")


@pytest.mark.parametrize("where", ["overview", "integration page"])
def test_while_check_now_runs_every_button_of_the_cell_is_disabled(page, lead, accounts_host,
                                                                   where, monkeypatch):
    # A check right after another would be answered with that one (a double click), at once.
    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    package = onboard("Acme POS", **demo_credentials()).package
    check_run(package=package, actor=lead)  # holds a refresh token: Refresh token is offered
    accounts_host.latency_ms = 1500  # the next exchange takes a while
    login(page, "lead")
    if where == "integration page":
        page.goto(_integration_page(package.integration))
    sandbox = page.get_by_role("article", name="Sandbox")
    refresh = sandbox.get_by_role("button", name="Refresh token")
    expect(refresh).to_be_enabled()
    sandbox.get_by_role("button", name="Check now").click()
    expect(refresh).to_be_disabled()
    expect(sandbox.get_by_role("button", name="Check now")).to_be_disabled()
    # Once the new cell is in, its buttons work again.
    expect(refresh).to_be_enabled(timeout=10_000)
    expect(sandbox.get_by_role("button", name="Check now")).to_be_enabled()
