"""Check now from a page left open across a sign-in (another tab): the card says to reload, as
the refused-form page does, not "You may not do this"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from onboarding.models import ConnectivityCheck
from tests.conftest import onboard
from tests.e2e.pages import demo_credentials, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_check_now_after_signing_in_again_elsewhere_says_to_reload(page, lead, accounts_host):
    onboard("Acme POS", **demo_credentials())
    login(page, "lead")  # the overview, whose forms carry this sign-in's CSRF token
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    login(other, "lead")  # a new CSRF secret for the whole browser
    other.close()

    page.get_by_role("button", name="Check now").click()
    error = page.get_by_role("article", name="Sandbox").locator(".card-error")
    expect(error).to_contain_text("open from before you last signed in")
    expect(error).to_contain_text("reload the page and try again")
    expect(error).not_to_contain_text("You may not do this")
    assert ConnectivityCheck.objects.count() == 0
