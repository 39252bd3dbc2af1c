"""Reveal with step-up, the audit log filter and the access report download, in a real browser."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from onboarding.models import AuditEvent, Role
from onboarding.services.audit import AuditAction
from onboarding.services.grants import grant_create
from tests.conftest import KNOWN_SECRET, onboard
from tests.e2e.pages import USER_PASSWORD, login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_lead_reveals_a_secret_after_confirming_the_password(page, lead):
    package = onboard().package
    login(page, "lead")
    page.goto(f"/packages/{package.uuid}/reveal/")
    expect(page.get_by_role("heading", name="Reveal and export")).to_be_visible()
    assert KNOWN_SECRET not in page.content()

    page.get_by_label("Credential").select_option(label="Client secret")
    reveal_form = page.locator("form", has=page.get_by_role("button", name="Reveal"))
    reveal_form.get_by_label("Your password").fill("not my password")
    reveal_form.get_by_role("button", name="Reveal").click()
    expect(page.get_by_role("alert")).to_contain_text("That password is not right")
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL).exists()

    page.get_by_label("Credential").select_option(label="Client secret")
    reveal_form.get_by_label("Your password").fill(USER_PASSWORD)
    reveal_form.get_by_role("button", name="Reveal").click()
    expect(page.get_by_label("Value")).to_have_value(KNOWN_SECRET)
    event = AuditEvent.objects.get(action=AuditAction.REVEAL)
    assert event.actor_name == "lead"
    assert KNOWN_SECRET not in str(event.details)


def test_an_auditor_filters_the_audit_log_by_action(page, auditor, lead):
    onboard("Acme POS")
    onboard("Northwind Tablets")
    login(page, "auditor")
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("table.audit-log tbody tr")
    expect(rows.first).to_be_visible()
    page.get_by_label("Action").select_option(label="Integration created")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=integration_create"))
    expect(rows).to_have_count(2)
    actions = rows.locator("td:nth-child(4)").all_inner_texts()
    assert set(actions) == {"Integration created"}  # in words, as the filter names it
    integrations = set(rows.locator("td:nth-child(5)").all_inner_texts())
    assert integrations == {"Acme POS", "Northwind Tablets"}


def test_an_auditor_downloads_the_access_report(page, auditor, release_manager, lead,
                                               superuser):
    integration = onboard().package.integration
    grant_create(user=lead, role=Role.CHECK, integration=integration, granted_by=superuser,
                 valid_until=timezone.now() + timedelta(days=7), reason="Go-live week")
    login(page, "auditor")
    page.get_by_role("link", name="Production access").click()
    expect(page.get_by_role("heading", name="Production access")).to_be_visible()
    expect(page.locator("table.access-report")).to_contain_text("release")
    screenshot(page, "access-report")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as report:
        rows = list(csv.DictReader(io.StringIO(report.read())))
    by_user = {row["user"]: row for row in rows}
    assert "promote" in by_user["release"]["roles"]
    assert "auditor" in by_user  # auditors may view Production
    assert "grant" in by_user["lead"]["how"]
    assert KNOWN_SECRET not in str(rows)


def test_the_access_report_with_a_revoke_field_fits_a_375_pixel_screen(page, superuser, lead):
    grant_create(user=lead, role=Role.CHECK, integration=onboard().package.integration,
                 granted_by=superuser, valid_until=timezone.now() + timedelta(days=7),
                 reason="Go-live week")
    page.set_viewport_size({"width": 375, "height": 780})
    login(page, "root")
    page.goto("/access/")
    expect(page.get_by_role("button", name="Revoke")).to_be_visible()
    expect(page.get_by_label("Your password")).to_be_attached()  # the visually-hidden label
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
