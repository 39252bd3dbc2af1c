"""The reveal page's token countdown ticks in a real browser (static/js/app.js, as on the cards)
and turns to "expired" when the token runs out while the page is open."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from onboarding.models import ConnectivityCheck
from onboarding.services.checks import check_run
from tests.conftest import onboard
from tests.e2e.pages import USER_PASSWORD, assert_counts_down, demo_credentials, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_reveal_pages_token_countdown_ticks_and_says_when_it_has_expired(
        page, lead, accounts_host):
    package = onboard("Acme POS", **demo_credentials()).package
    check = check_run(package=package)
    login(page, "lead")

    page.goto(f"/packages/{package.uuid}/reveal/")
    countdown = page.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"\d+ s left"))
    assert_counts_down(countdown)

    token_form = page.locator("form", has=page.get_by_role("button", name="Show the token"))
    token_form.get_by_label("Your password").fill(USER_PASSWORD)
    token_form.get_by_role("button", name="Show the token").click()
    expect(page.get_by_label("Value")).to_have_value(check.access_token)
    countdown = page.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"\d+ s left"))
    assert_counts_down(countdown)

    # A token that runs out while the page is open is then called expired, in words.
    ConnectivityCheck.objects.filter(pk=check.pk).update(
        expires_at=timezone.now() + timedelta(seconds=3))
    page.goto(f"/packages/{package.uuid}/reveal/")
    countdown = page.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"\d+ s left"))
    expect(countdown).to_have_text("expired", timeout=8_000)
    expect(countdown).to_have_class(re.compile(r"\bexpired\b"))
