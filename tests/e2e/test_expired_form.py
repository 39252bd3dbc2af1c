"""A package form sent after the session ended, in a real browser: the sign-in page says the
form was not saved, and signing in leads back to the form's page (not the overview)."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from tests.conftest import onboard
from tests.e2e.pages import demo_credentials, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_form_sent_after_the_session_ended_says_so_and_leads_back_to_its_page(page, lead):
    integration = onboard("Acme POS", **demo_credentials()).package.integration
    edit = f"/integrations/{integration.uuid}/packages/sandbox/edit/"
    login(page, "lead")
    page.goto(edit)
    page.get_by_label("Notes").fill("typed while the session ran out")
    Session.objects.all().delete()  # as if it had been idle for longer than the timeout

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?"))
    assert "typed" not in page.url  # nothing from the form is in the address
    expect(page.locator(".notice")).to_have_text(
        "Your session ended, so the form you sent was not saved. Please sign in again, then "
        "fill the form in and send it again.")

    page.get_by_label("User name").fill("lead")
    page.get_by_label("Password").fill("unused-in-tests-1234")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(edit) + "$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sandbox onboarding package")
