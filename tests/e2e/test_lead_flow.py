"""A lead in a real browser: signs in, adds a Sandbox package by pasting iQmetrix's cURL example,
sees the check pass with a live countdown, and sees a wrong password explained in plain words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from onboarding.models import ConnectivityCheck, Environment, Integration
from onboarding.services.packages import package_current
from onboarding.simulator import DEMO_ACCOUNT
from tests.conftest import onboard
from tests.e2e.pages import (
    assert_counts_down,
    demo_credentials,
    login,
    paste,
    screenshot,
    seconds_left,
)
from tests.test_paste import GUIDE_CURL

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_signing_in_leads_to_the_overview(page, lead):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    login(page, "lead")
    expect(page.get_by_role("heading", name="Integrations", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Add onboarding package")).to_be_visible()


def test_a_lead_pastes_the_curl_example_saves_and_checks_and_the_countdown_runs(
        page, lead, accounts_host):
    login(page, "lead")
    page.get_by_role("link", name="Add onboarding package").click()
    expect(page.get_by_role("heading", name="Add onboarding package")).to_be_visible()
    page.get_by_label("Integration name").fill("Acme POS")

    # The paste fills the fields in the browser at once (static/js/paste.js).
    paste(page, page.get_by_label("The cURL command or the Postman environment"), GUIDE_CURL)
    expect(page.locator("#paste-status")).to_contain_text(
        "Filled from the paste: client ID, client secret, user name and password.")
    # The secrets are in the masked fields now, not left in the clear in the paste box.
    expect(page.get_by_label("The cURL command or the Postman environment")).to_have_value("")
    expect(page.locator("#paste-status")).to_contain_text("The pasted text was cleared")
    expect(page.get_by_label("Client ID")).to_have_value(DEMO_ACCOUNT.client_id)
    expect(page.get_by_label("User name")).to_have_value(DEMO_ACCOUNT.username)
    expect(page.get_by_label("Client secret")).to_have_value(DEMO_ACCOUNT.client_secret)
    expect(page.get_by_label("Password", exact=True)).to_have_value(DEMO_ACCOUNT.password)
    page.get_by_label("Company ID").fill("14146")
    page.get_by_label("Location ID").fill("store-12")
    screenshot(page, "package-form")

    page.get_by_role("button", name="Save and check").click()
    expect(page.get_by_role("heading", name="Acme POS", level=1)).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("Saved Sandbox version 1 of Acme POS.")
    expect(page.locator(".messages")).to_contain_text("Sandbox check: OK.")
    card = page.locator(".env-card", has=page.get_by_role("heading", name="Sandbox"))
    expect(card).to_contain_text("Passed")
    assert DEMO_ACCOUNT.client_secret not in page.content()

    countdown = card.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"\d+ s left"))
    assert seconds_left(countdown.inner_text()) <= accounts_host.expires_in
    assert_counts_down(countdown)
    screenshot(page, "integration")

    integration = Integration.objects.get(name="Acme POS")
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert version.password == DEMO_ACCOUNT.password
    assert (version.company_id, version.location_id) == (14146, "store-12")
    assert ConnectivityCheck.objects.get().outcome == "ok"


def test_check_now_on_the_overview_is_one_click_and_the_dashboard_fits_both_widths(
        page, lead, accounts_host):
    onboard("Acme POS", **demo_credentials())
    onboard("Northwind Tablets", client_id="nw-client-0001", username="nw@example.com")
    login(page, "lead")
    card = page.locator(".env-card", has=page.get_by_role("heading", name="Sandbox")).first
    card.get_by_role("button", name="Check now").click()
    card = page.locator(".env-card", has=page.get_by_role("heading", name="Sandbox")).first
    expect(card).to_contain_text("Passed: OK")
    countdown = card.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"\d+ s left"))
    assert_counts_down(countdown)
    screenshot(page, "dashboard")
    screenshot(page, "dashboard-360", width=360)
    # At 360 px nothing may need sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_wrong_password_shows_the_plain_message(page, lead, accounts_host):
    onboard("Acme POS", **demo_credentials(password="not-the-demo-password"))
    login(page, "lead")
    card = page.locator(".env-card", has=page.get_by_role("heading", name="Sandbox")).first
    card.get_by_role("button", name="Check now").click()
    card = page.locator(".env-card", has=page.get_by_role("heading", name="Sandbox")).first
    expect(card).to_contain_text("Failed: Invalid user name or password")
    expect(card).to_contain_text("iQmetrix rejected the user name or password for Sandbox.")
    check = ConnectivityCheck.objects.get()
    assert check.outcome == "invalid_credentials"
    assert "not-the-demo-password" not in page.content()


def test_without_javascript_the_paste_is_read_when_saving(browser, live_server, lead):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    try:
        login(page, "lead")
        page.goto("/integrations/new/")
        page.get_by_label("Integration name").fill("No Script Store")
        paste(page, page.get_by_label("The cURL command or the Postman environment"), GUIDE_CURL)
        expect(page.get_by_label("Client ID")).to_have_value("")  # nothing filled in the page
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messages")).to_contain_text(
            "Taken from the pasted text: client ID, client secret, user name and password.")
    finally:
        context.close()
    integration = Integration.objects.get(name="No Script Store")
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert version.client_secret == DEMO_ACCOUNT.client_secret


def test_the_package_form_fits_a_360_pixel_screen(page, lead):
    page.set_viewport_size({"width": 360, "height": 780})
    login(page, "lead")
    page.goto("/integrations/new/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for label in ("Integration name", "Client ID", "Client secret", "Password"):
        box = page.get_by_label(label, exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, label


def test_a_refused_form_puts_focus_on_its_error_summary_whose_links_lead_to_the_fields(
        page, lead):
    login(page, "lead")
    page.goto("/integrations/new/")
    page.get_by_label("Client ID").fill("some-client")
    page.get_by_label("User name (e-mail)").fill("not an e-mail")
    page.get_by_role("button", name="Save", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Nothing was saved")
    # Keyboard and screen-reader users start at what went wrong, not at the top of the page.
    expect(summary).to_be_focused()
    summary.get_by_role("link", name=re.compile(r"^User name \(e-mail\):")).click()
    expect(page.get_by_label("User name (e-mail)")).to_be_focused()
    summary.get_by_role("link", name=re.compile(r"^Integration name:")).click()
    expect(page.get_by_label("Integration name")).to_be_focused()
