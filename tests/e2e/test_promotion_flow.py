"""A release manager promotes a checked Sandbox package to Production through the admin action
and its confirmation page, in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from onboarding.models import Environment, Promotion
from onboarding.services.checks import check_run
from onboarding.services.packages import package_current
from onboarding.simulator import DEMO_ACCOUNT
from tests.conftest import onboard
from tests.e2e.pages import USER_PASSWORD, demo_credentials, login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_release_manager_promotes_through_the_admin_confirmation_page(
        page, release_manager, accounts_host):
    sandbox = onboard("Acme POS", company_id=14146, location_id="store-12",
                      **demo_credentials())
    assert check_run(package=sandbox.package).ok  # a real exchange with the simulator
    integration = sandbox.package.integration
    login(page, "release")

    page.goto("/admin/onboarding/integration/")
    page.locator("tr", has_text="Acme POS").locator("input[name=_selected_action]").check()
    page.locator("select[name=action]").select_option(label="Promote to Production")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("body.promote-confirmation")).to_be_visible()
    expect(page.locator(".promotion-item h2")).to_contain_text("Sandbox v1")
    page.get_by_label("Copy Sandbox's credentials").check()
    page.get_by_label("Reason").fill("Go-live after a passing Sandbox check")
    screenshot(page, "promotion-confirmation")

    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Promote to Production").click()
    expect(page.locator(".errorlist")).to_contain_text("Your password was not confirmed")
    assert not Promotion.objects.exists()

    page.get_by_label("Your password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Promote to Production").click()
    expect(page.locator("body.promote-result")).to_be_visible()
    expect(page.locator("ul.promoted")).to_contain_text(
        "Acme POS: Sandbox v1 → Production v1, with Sandbox's credentials")

    promotion = Promotion.objects.get()
    assert promotion.performed_by == release_manager
    production = package_current(integration=integration, environment=Environment.PRODUCTION)
    assert (production.client_id, production.company_id) == (DEMO_ACCOUNT.client_id, 14146)
    assert DEMO_ACCOUNT.client_secret not in page.content()
