"""The admin actions "Promote to Production" and "Roll back Production…", and the Production
history page with its rollback form."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from dashboard.stepup import SESSION_KEY
from onboarding.models import (
    AuditEvent,
    Environment,
    Integration,
    PackageVersion,
    Promotion,
    VersionSource,
)
from onboarding.services.packages import package_current
from onboarding.services.promotion import promotion_preview
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user, onboard
from tests.test_promotion import PRODUCTION_SECRET, passing_check, snapshot

CHANGELIST = "/admin/onboarding/integration/"
USER_PASSWORD = "unused-in-tests-1234"


def fresh_stepup(client) -> None:
    session = client.session
    session[SESSION_KEY] = time.time()
    session.save()


@pytest.fixture
def checked(sandbox_version) -> Integration:
    passing_check(sandbox_version)
    return sandbox_version.package.integration


@pytest.fixture
def with_production(checked) -> Integration:
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            client_secret=PRODUCTION_SECRET, company_id=555)
    return checked


@pytest.fixture
def manager_client(client, release_manager):
    client.force_login(release_manager)
    return client


def confirm_page(client, *integrations: Integration):
    return client.post(CHANGELIST, {
        "action": "promote_to_production",
        "_selected_action": [str(i.pk) for i in integrations],
    })


def apply_post(client, *integrations: Integration, reason: str = "Spring launch",
               password: str | None = USER_PASSWORD, credentials: str = "keep",
               reviewed: dict[int, str] | None = None):
    data: dict = {"action": "promote_to_production", "post": "yes", "reason": reason,
                  "_selected_action": [str(i.pk) for i in integrations]}
    if password is not None:
        data["confirm_password"] = password
    for integration in integrations:
        # What the confirmation page shows, unless a test says which Sandbox was reviewed.
        preview = promotion_preview(integration=integration, actor=None)
        if reviewed and integration.pk in reviewed:
            data[f"reviewed-{integration.pk}"] = reviewed[integration.pk]
        else:
            data[f"reviewed-{integration.pk}"] = str(preview.sandbox_version_uuid or "none")
        data[f"reviewed-production-{integration.pk}"] = str(
            preview.production_version_uuid or "none")
        data[f"credentials-{integration.pk}"] = credentials
    return client.post(CHANGELIST, data)


# ---- promote action -------------------------------------------------------------------------

def test_release_managers_see_the_promote_action(manager_client, checked):
    response = manager_client.get(CHANGELIST)
    assert response.status_code == 200
    assert b"Promote to Production" in response.content
    assert b"Roll back Production" in response.content


def test_staff_without_the_promote_right_are_not_offered_the_action(client, checked):
    staffer = make_user("staffer", "Integration leads", is_staff=True)
    staffer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    client.force_login(staffer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert b"promote_to_production" not in response.content


def test_forged_promotion_post_without_the_right_changes_nothing(client, checked):
    staffer = make_user("staffer", "Integration leads", is_staff=True)
    staffer.user_permissions.add(Permission.objects.get(codename="view_integration"))
    client.force_login(staffer)
    before = snapshot()
    response = apply_post(client, checked)
    assert response.status_code == 403
    assert snapshot()[:2] == before[:2]
    assert AuditEvent.objects.filter(action="denied").exists()


def test_confirmation_page_shows_verdicts_diff_and_choices_but_no_secret(manager_client,
                                                                       with_production):
    response = confirm_page(manager_client, with_production)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Sandbox v1 passed a connectivity check" in html
    assert "Company ID" in html and "changed" in html and "unchanged" in html
    assert f'name="reviewed-{with_production.pk}"' in html
    assert f'name="credentials-{with_production.pk}" value="keep" checked' in html
    assert 'name="confirm_password"' in html and 'name="reason"' in html
    for secret in (KNOWN_SECRET, KNOWN_PASSWORD, PRODUCTION_SECRET, "prod-client-998877"):
        assert secret not in html
    assert Promotion.objects.count() == 0


def test_a_confirmation_where_every_guard_refuses_offers_no_promote_button(manager_client,
                                                                          sandbox_version):
    # Never checked: the check guard refuses. A form would take a reason and a password only
    # to answer "Promoted (0)".
    integration = sandbox_version.package.integration
    html = confirm_page(manager_client, integration).content.decode()
    assert "✗ Will not be promoted:" in html
    assert "✓ You hold the promote role for this integration." in html
    assert "This integration cannot be promoted now" in html
    assert 'value="Promote to Production"' not in html and 'name="reason"' not in html


def test_copy_is_the_default_when_production_has_no_credentials(manager_client, checked):
    html = confirm_page(manager_client, checked).content.decode()
    assert f'name="credentials-{checked.pk}" value="copy" checked' in html


def test_fresh_confirmation_needs_no_password_field(manager_client, checked):
    fresh_stepup(manager_client)
    html = confirm_page(manager_client, checked).content.decode()
    assert 'name="confirm_password"' not in html
    response = apply_post(manager_client, checked, password=None)
    assert response.status_code == 200 and Promotion.objects.count() == 1


def test_confirming_promotes_and_the_result_page_says_so(manager_client, with_production):
    response = apply_post(manager_client, with_production)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Promoted (1)" in html and "Production v2" in html
    assert "keeping Production's own credentials" in html
    version = package_current(integration=with_production, environment=Environment.PRODUCTION)
    assert (version.number, version.source) == (2, VersionSource.PROMOTION)
    assert version.client_secret == PRODUCTION_SECRET
    assert Promotion.objects.get().reason == "Spring launch"


def test_copy_choice_copies_sandbox_credentials(manager_client, with_production):
    apply_post(manager_client, with_production, credentials="copy")
    version = package_current(integration=with_production, environment=Environment.PRODUCTION)
    assert version.client_secret == KNOWN_SECRET


def test_wrong_password_shows_the_page_again_and_changes_nothing(manager_client, checked):
    before = snapshot()
    response = apply_post(manager_client, checked, password="not-my-password")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your password was not confirmed" in html and 'name="reason"' in html
    assert "Spring launch" in html  # the reason typed is kept
    assert snapshot()[:2] == before[:2]  # (a failed sign-in is audited, nothing else)


def test_empty_reason_shows_the_page_again(manager_client, checked):
    before = snapshot()
    response = apply_post(manager_client, checked, reason="   ")
    assert response.status_code == 200
    assert "Give a reason" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize(("reason", "message"), [
    ("launch\x00", "Null characters are not allowed."),
    ("x" * 2001, "at most 2000 characters"),
])
def test_a_reason_the_database_cannot_keep_shows_the_page_again(manager_client, checked,
                                                                reason, message):
    before = snapshot()
    response = apply_post(manager_client, checked, reason=reason)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert snapshot() == before


def test_each_integration_is_promoted_or_refused_on_its_own(manager_client, checked):
    unchecked = onboard(name="Beta Kiosk").package.integration
    empty = Integration.objects.create(name="Gamma", slug="gamma")
    response = apply_post(manager_client, checked, unchecked, empty)
    html = response.content.decode()
    assert "Promoted (1)" in html and "Not promoted (2)" in html
    assert "Sandbox v1 has never passed a connectivity check" in html
    assert "Sandbox has no package yet" in html
    assert list(Promotion.objects.values_list("integration__name", flat=True)) == ["Acme POS"]


def test_a_sandbox_edit_after_review_is_refused(manager_client, checked):
    reviewed = str(promotion_preview(integration=checked, actor=None).sandbox_version_uuid)
    passing_check(onboard(company_id=777))  # Sandbox v2, checked, after the review
    response = apply_post(manager_client, checked, reviewed={checked.pk: reviewed})
    assert "Sandbox changed since you reviewed it" in response.content.decode()
    assert Promotion.objects.count() == 0


def reviewed_on_page(html: str, integration: Integration) -> dict[str, str]:
    """The hidden "reviewed" fields of one integration on a confirmation page."""
    return dict(re.findall(rf'name="(reviewed-(?:production-)?{integration.pk})" value="([^"]*)"',
                           html))


def test_production_credentials_stored_after_review_are_not_replaced(manager_client, checked):
    page = confirm_page(manager_client, checked).content.decode()
    # Reviewed "Production has no version yet", where copying Sandbox's is preselected.
    reviewed = reviewed_on_page(page, checked)
    assert reviewed == {f"reviewed-{checked.pk}": str(package_current(
        integration=checked, environment=Environment.SANDBOX).uuid),
        f"reviewed-production-{checked.pk}": "none"}
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            client_secret=PRODUCTION_SECRET)  # a lead stores Production's own meanwhile
    response = manager_client.post(CHANGELIST, {
        "action": "promote_to_production", "_selected_action": [str(checked.pk)],
        "post": "yes", "reason": "launch", "confirm_password": USER_PASSWORD,
        f"credentials-{checked.pk}": "copy", **reviewed})
    html = response.content.decode()
    assert ("Production changed since you reviewed it (it is now v1): review the promotion "
            "again.") in html
    assert Promotion.objects.count() == 0
    production = package_current(integration=checked, environment=Environment.PRODUCTION)
    assert (production.number, production.client_secret) == (1, PRODUCTION_SECRET)
    assert PRODUCTION_SECRET not in html


def test_a_confirmation_still_matching_production_promotes(manager_client, with_production):
    page = confirm_page(manager_client, with_production).content.decode()
    reviewed = reviewed_on_page(page, with_production)
    assert reviewed[f"reviewed-production-{with_production.pk}"] == str(
        package_current(integration=with_production, environment=Environment.PRODUCTION).uuid)
    response = manager_client.post(CHANGELIST, {
        "action": "promote_to_production", "_selected_action": [str(with_production.pk)],
        "post": "yes", "reason": "launch", "confirm_password": USER_PASSWORD,
        f"credentials-{with_production.pk}": "keep", **reviewed})
    assert "Promoted (1)" in response.content.decode()
    production = package_current(integration=with_production,
                                 environment=Environment.PRODUCTION)
    assert (production.number, production.client_secret) == (2, PRODUCTION_SECRET)


def test_a_post_without_the_reviewed_version_is_refused(manager_client, checked):
    response = apply_post(manager_client, checked, reviewed={checked.pk: ""})
    assert "not on the confirmation page you reviewed" in response.content.decode()
    assert Promotion.objects.count() == 0


def test_a_grant_for_one_integration_refuses_the_others(client, checked):
    from datetime import timedelta

    from django.utils import timezone

    from onboarding.models import AccessGrant

    other = onboard(name="Beta Kiosk")
    passing_check(other)
    user = make_user("granted", is_staff=True)
    AccessGrant.objects.create(user=user, role="promote", integration=other.package.integration,
                               valid_until=timezone.now() + timedelta(hours=1), reason="test")
    client.force_login(user)
    listed = client.get(CHANGELIST).content.decode()
    assert "Beta Kiosk" in listed and checked.name not in listed
    # Not offered, and not reachable by its id either (its notes and name stay hidden).
    assert client.get(f"/admin/onboarding/integration/{checked.pk}/change/").status_code == 302
    response = apply_post(client, checked, other.package.integration)  # a crafted selection
    html = response.content.decode()
    assert response.status_code == 200
    assert "Promoted (1)" in html
    assert not PackageVersion.objects.filter(package__integration=checked,
                                             package__environment="production").exists()


# ---- what the confirmation says for each integration ---------------------------------------

def diff_table(html: str) -> dict[str, tuple[str, str]]:
    """Field -> (keeping Production's credentials, copying Sandbox's) as the page words them."""
    return {label: (keep, copy) for label, keep, copy in re.findall(
        r'<tr><th scope="row">([^<]*)</th><td class="[^"]*">([^<]*)</td>'
        r'<td class="[^"]*">([^<]*)</td></tr>', html)}


def item_block(html: str, integration: Integration) -> str:
    """The part of a confirmation page about one integration."""
    blocks = html.split('<div class="module promotion-item">')[1:]
    return next(block for block in blocks if f"<h2>{integration.name}:" in block)


def test_with_no_production_version_kept_credentials_are_not_set_and_copied_ones_new(
        manager_client, checked):
    # "unchanged" claimed Production had credentials to keep; it has no version at all.
    html = confirm_page(manager_client, checked).content.decode()
    table = diff_table(html)
    for label in ("Client ID", "Client secret", "User name", "Password"):
        assert table[label] == ("not set", "new")
    assert table["Company ID"] == table["Location ID"] == ("new", "new")
    assert table["Notes"] == ("not set", "not set")  # empty in Sandbox too
    assert "unchanged" not in str(table)
    assert "(Production has none yet: it will stay “credentials missing”)" in html


def test_with_a_production_version_the_diff_says_what_happens_to_each_credential(
        manager_client, checked):
    # Production v1 has its own client ID, user name and secret, but no password.
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            username="prod.user@example.com", client_secret=PRODUCTION_SECRET, password=None,
            company_id=555)
    html = confirm_page(manager_client, checked).content.decode()
    table = diff_table(html)
    for label in ("Client ID", "User name", "Client secret"):
        assert table[label] == ("unchanged", "changed")
    # A stored secret's emptiness is never told (as in the history): "unchanged" or "changed".
    assert table["Password"] == ("unchanged", "changed")
    assert table["Company ID"] == ("changed", "changed")
    assert table["Location ID"] == ("unchanged", "unchanged")
    assert table["Notes"] == ("not set", "not set")
    for secret in (KNOWN_SECRET, KNOWN_PASSWORD, PRODUCTION_SECRET, "prod-client-998877"):
        assert secret not in html
    # Three of four: not "none yet", which it said of any Production without all four.
    shown = unescape(html)  # the apostrophe is escaped in the page's source
    assert "(Production's are incomplete: it will stay “credentials missing”)" in shown
    assert "none yet" not in shown


def test_a_value_sandbox_lacks_reads_cleared_and_a_secret_still_changed(manager_client, db):
    integration = onboard(location_id="", notes="").package.integration
    passing_check(package_current(integration=integration, environment=Environment.SANDBOX))
    onboard(environment=Environment.PRODUCTION, location_id="store-9", notes="night shift",
            client_secret=PRODUCTION_SECRET)
    table = diff_table(confirm_page(manager_client, integration).content.decode())
    assert table["Location ID"] == table["Notes"] == ("cleared", "cleared")  # "changed" before
    assert table["Client secret"] == ("unchanged", "changed")  # its emptiness is never told


def test_a_secret_sandbox_lacks_is_not_set_either_way_when_production_has_no_version(
        manager_client, db):
    integration = onboard(password=None).package.integration
    passing_check(package_current(integration=integration, environment=Environment.SANDBOX))
    table = diff_table(confirm_page(manager_client, integration).content.decode())
    assert table["Password"] == ("not set", "not set")
    assert table["Client secret"] == ("not set", "new")


def test_a_refused_integration_shows_its_refusal_but_no_diff_and_no_choice(manager_client,
                                                                           checked):
    never_checked = onboard(name="Beta Kiosk").package.integration
    html = confirm_page(manager_client, checked, never_checked).content.decode()
    refused = item_block(html, never_checked)
    assert "✗ Will not be promoted: Sandbox v1 has never passed a connectivity check" in refused
    assert "promotion-diff" not in refused and "Copying Sandbox's credentials" not in refused
    assert f'name="credentials-{never_checked.pk}"' not in html
    # Still selected and reviewed, so that the result reports it as not promoted.
    assert f'name="_selected_action" value="{never_checked.pk}"' in refused
    assert f'name="reviewed-{never_checked.pk}"' in refused
    allowed = item_block(html, checked)
    assert "promotion-diff" in allowed
    assert f'name="credentials-{checked.pk}" value="copy" checked' in allowed


def page_post(page: str, *, credentials: dict[int, str]) -> dict:
    """What the browser posts from a confirmation page: its hidden fields and the choices."""
    data: dict = {"action": "promote_to_production", "post": "yes", "reason": "launch",
                  "confirm_password": USER_PASSWORD,
                  "_selected_action": re.findall(r'name="_selected_action" value="(\d+)"', page)}
    data.update(re.findall(r'name="(reviewed-[^"]+)" value="([^"]*)"', page))
    data.update({f"credentials-{pk}": choice for pk, choice in credentials.items()})
    return data


def test_a_refused_integration_without_a_choice_is_reported_and_the_others_promoted(
        manager_client, checked):
    never_checked = onboard(name="Beta Kiosk").package.integration
    page = confirm_page(manager_client, checked, never_checked).content.decode()
    response = manager_client.post(CHANGELIST, page_post(page, credentials={checked.pk: "copy"}))
    html = response.content.decode()
    assert "Promoted (1)" in html and "Not promoted (1)" in html
    assert "Beta Kiosk: nothing was changed." in html
    assert "Sandbox v1 has never passed a connectivity check" in html
    promoted = package_current(integration=checked, environment=Environment.PRODUCTION)
    assert promoted.client_secret == KNOWN_SECRET  # the choice made for it: copy
    assert not PackageVersion.objects.filter(package__integration=never_checked,
                                             package__environment="production").exists()


def test_an_integration_refused_on_the_page_is_not_promoted_when_it_passes_meanwhile(
        manager_client, sandbox_version):
    # The page offered no credentials choice for it; a check passing before the post must not
    # promote it with a choice nobody made.
    integration = sandbox_version.package.integration
    page = confirm_page(manager_client, integration).content.decode()
    assert "✗ Will not be promoted:" in page
    passing_check(sandbox_version)
    response = manager_client.post(CHANGELIST, page_post(page, credentials={}))
    html = response.content.decode()
    assert "Promoted (0)" in html and "Not promoted (1)" in html
    assert "No credentials choice was made" in html
    assert Promotion.objects.count() == 0
    assert not PackageVersion.objects.filter(package__integration=integration,
                                             package__environment="production").exists()


# ---- rollback action ------------------------------------------------------------------------

@pytest.fixture
def promoted(with_production, release_manager) -> Integration:
    from onboarding.services.promotion import promotion_apply

    promotion_apply(integration=with_production, actor=release_manager, reason="launch",
                    copy_credentials=True, reviewed_sandbox_version=None,
                    reviewed_production_version=None)
    return with_production


def test_admin_rollback_writes_a_new_version(manager_client, promoted):
    page = manager_client.post(CHANGELIST, {"action": "roll_back_production",
                                            "_selected_action": [str(promoted.pk)]})
    assert page.status_code == 200 and b'value="1"' in page.content
    assert b'name="current_version" value="2"' in page.content
    assert KNOWN_SECRET.encode() not in page.content
    response = manager_client.post(CHANGELIST, {
        "action": "roll_back_production", "_selected_action": [str(promoted.pk)], "post": "yes",
        "to_version": "1", "current_version": "2", "reason": "orders broke",
        "confirm_password": USER_PASSWORD})
    assert response.status_code == 302
    version = package_current(integration=promoted, environment=Environment.PRODUCTION)
    assert (version.number, version.source, version.client_secret) == (
        3, VersionSource.ROLLBACK, PRODUCTION_SECRET)


def test_admin_rollback_refusal_is_shown_on_the_page(manager_client, promoted):
    response = manager_client.post(CHANGELIST, {
        "action": "roll_back_production", "_selected_action": [str(promoted.pk)], "post": "yes",
        "to_version": "2", "current_version": "2", "reason": "again",
        "confirm_password": USER_PASSWORD})
    assert response.status_code == 200
    assert "Choose a version earlier than the current v2." in response.content.decode()


def test_admin_rollback_takes_one_integration_at_a_time(manager_client, promoted):
    other = onboard(name="Beta Kiosk").package.integration
    response = manager_client.post(CHANGELIST, {
        "action": "roll_back_production", "_selected_action": [str(promoted.pk), str(other.pk)]},
        follow=True)
    assert "Choose exactly one integration to roll back." in response.content.decode()


def admin_rollback(client, integration: Integration, **data):
    return client.post(CHANGELIST, {
        "action": "roll_back_production", "_selected_action": [str(integration.pk)],
        "post": "yes", "reason": "orders broke", "confirm_password": USER_PASSWORD, **data})


def rollback_counts() -> tuple[int, int, int]:
    """Production versions, rollback records and rollback events."""
    return (PackageVersion.objects.filter(package__environment="production").count(),
            Promotion.objects.filter(kind="rollback").count(),
            AuditEvent.objects.filter(action="rollback").count())


def promote_again(integration: Integration, actor) -> None:
    from onboarding.services.promotion import promotion_apply

    promotion_apply(integration=integration, actor=actor, reason="a colleague's fix",
                    copy_credentials=False, reviewed_sandbox_version=None,
                    reviewed_production_version=None)


def test_admin_rollback_is_refused_when_production_changed_since_the_confirmation(
        manager_client, promoted, release_manager):
    page = manager_client.post(CHANGELIST, {"action": "roll_back_production",
                                            "_selected_action": [str(promoted.pk)]})
    promote_again(promoted, release_manager)  # v3 lands while the page is open
    before = snapshot()
    response = admin_rollback(manager_client, promoted, to_version="1", current_version="2",
                              reason="INC-1 orders broke")
    html = response.content.decode()
    assert response.status_code == 200
    assert ("Production changed since you reviewed it (it is now v3): review the rollback "
            "again.") in html
    assert b'name="current_version" value="2"' in page.content
    # The page shows Production as it is now, with what was typed and chosen kept; the next
    # post is reviewed against v3.
    assert "INC-1 orders broke</textarea>" in html
    assert 'id="to_version_1" value="1" aria-label="Roll back to v1" checked' in html
    assert 'name="current_version" value="3"' in html
    assert snapshot()[:2] == before[:2]  # the password confirmation itself is audited
    assert admin_rollback(manager_client, promoted, to_version="1",
                          current_version="3").status_code == 302
    assert rollback_counts() == (4, 1, 1)


def test_admin_rollback_submitted_twice_rolls_back_once(manager_client, promoted):
    first = admin_rollback(manager_client, promoted, to_version="1", current_version="2")
    second = admin_rollback(manager_client, promoted, to_version="1", current_version="2")
    assert (first.status_code, second.status_code) == (302, 302)
    assert rollback_counts() == (3, 1, 1)
    page = manager_client.get(CHANGELIST).content.decode()
    assert page.count("Production back to v1 as version 3") == 2  # both clicks, one rollback


def test_admin_rollback_page_errors_keep_the_version_first_reviewed(manager_client, promoted,
                                                                    release_manager):
    promote_again(promoted, release_manager)  # v3, after the page showed v2
    response = admin_rollback(manager_client, promoted, to_version="1", current_version="2",
                              confirm_password="wrong")
    html = response.content.decode()
    assert "Your password was not confirmed" in html
    assert 'name="current_version" value="2"' in html  # still caught on the next try
    assert "(it is now v3)" in admin_rollback(manager_client, promoted, to_version="1",
                                              current_version="2").content.decode()
    assert rollback_counts() == (3, 0, 0)


def test_admin_rollback_from_a_page_without_the_current_version_is_refused(manager_client,
                                                                           promoted):
    response = admin_rollback(manager_client, promoted, to_version="1")
    html = response.content.decode()
    assert response.status_code == 200 and "This page was out of date" in html
    assert 'name="current_version" value="2"' in html
    assert rollback_counts() == (2, 0, 0)


# ---- Production history page ----------------------------------------------------------------

def history_url(integration: Integration) -> str:
    return reverse("dashboard:production_history", args=[integration.uuid])


def rollback_url(integration: Integration) -> str:
    return reverse("dashboard:production_rollback", args=[integration.uuid])


def test_history_lists_versions_and_promotions_with_who_when_why(client, lead, promoted):
    client.force_login(lead)
    response = client.get(history_url(promoted))
    html = response.content.decode()
    assert response.status_code == 200
    assert "v2 (current)" in html and "Promoted from Sandbox" in html
    assert "pr…77" in html  # masked Production client ID
    assert "launch" in html and "release" in html
    assert "Roll back to v1" not in html  # a lead may not roll back
    for secret in (KNOWN_SECRET, PRODUCTION_SECRET, "prod-client-998877"):
        assert secret not in html


@pytest.mark.parametrize("page", ["integration", "production_history"])
def test_the_reason_of_a_promotion_is_a_plain_cell_not_a_flash_message(client, lead, promoted,
                                                                       page):
    client.force_login(lead)
    html = client.get(reverse(f"dashboard:{page}", args=[promoted.uuid])).content.decode()
    assert '<td role="cell" class="promotion-reason" data-label="Why">launch</td>' in html
    assert 'class="message' not in html  # the flash messages' class (none on these pages)



@pytest.mark.parametrize("page", ["integration", "production_history"])
def test_the_changed_fields_of_a_promotion_are_named_in_words(client, lead, release_manager,
                                                              promoted, page):
    # A lead reads "Client ID, Client secret", not the field codes; a promotion that changed
    # nothing says so instead of leaving the cell blank.
    from onboarding.services.promotion import promotion_apply

    promotion_apply(integration=promoted, actor=release_manager, reason="again",
                    copy_credentials=False, reviewed_sandbox_version=None,
                    reviewed_production_version=None)
    client.force_login(lead)
    html = client.get(reverse(f"dashboard:{page}", args=[promoted.uuid])).content.decode()
    assert '<td role="cell" data-label="Changed">Client ID, Client secret, Company ID</td>' in html
    assert "<code>client_id</code>" not in html and "client_secret" not in html
    assert '<td role="cell" data-label="Changed">nothing</td>' in html

def test_each_rollback_choice_says_which_fields_it_would_change(client, release_manager,
                                                                promoted):
    # v1 is Production's own package; v2 was promoted with Sandbox's credentials. Rolling back
    # to v1 changes what v2 changed, named, never shown.
    client.force_login(release_manager)
    html = client.get(history_url(promoted)).content.decode()
    changed = re.findall(r'<td role="cell" data-label="Changed">([^<]*)</td>', html)
    assert changed[:2] == ["Client ID, Client secret, Company ID", "first version"]
    form = html.split('name="to_version" value="1"')[1].split("</form>")[0]
    assert ("Rolling back changes the client ID, client secret and company ID." in form)
    for secret in (KNOWN_SECRET, PRODUCTION_SECRET, "prod-client-998877"):
        assert secret not in html


def test_a_rollback_to_the_same_values_says_it_changes_nothing(client, release_manager,
                                                               promoted):
    from onboarding.services.promotion import rollback_apply

    rollback_apply(integration=promoted, actor=release_manager, to_version_number=1,
                   reason="back", reviewed_current=2)  # v3 = v1
    client.force_login(release_manager)
    html = client.get(history_url(promoted)).content.decode()
    assert re.findall(r'<td role="cell" data-label="Changed">([^<]*)</td>', html)[:1] == [
        "Client ID, Client secret, Company ID"]
    to_v1 = html.split('name="to_version" value="1"')[1].split("</form>")[0]
    assert "Same values as the current version" in to_v1
    to_v2 = html.split('name="to_version" value="2"')[1].split("</form>")[0]
    assert "Rolling back changes the client ID, client secret and company ID." in to_v2


def test_the_admin_rollback_page_names_what_each_choice_would_change(manager_client,
                                                                     promoted):
    page = manager_client.post(CHANGELIST, {"action": "roll_back_production",
                                            "_selected_action": [str(promoted.pk)]})
    html = page.content.decode()
    row = html.split('id="to_version_1"')[1].split("</tr>")[0]
    assert "first version" in row
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{2,5}</td>", row)  # with its zone
    assert "Rolling back changes the client ID, client secret and company ID." in row
    current = html.split("<td>current</td>")[1].split("</tr>")[0]
    assert "Client ID, Client secret, Company ID" in current and "Rolling back" not in current
    assert PRODUCTION_SECRET not in html and KNOWN_SECRET not in html


def test_outsiders_get_404(client, outsider, promoted):
    client.force_login(outsider)
    assert client.get(history_url(promoted)).status_code == 404
    assert client.post(rollback_url(promoted), {"to_version": 1, "reason": "x"}
                       ).status_code == 404


def test_viewers_without_promote_get_403_on_rollback(client, lead, promoted):
    client.force_login(lead)
    before = snapshot()
    response = client.post(rollback_url(promoted), {"to_version": 1, "reason": "x"})
    assert response.status_code == 403
    assert snapshot()[:2] == before[:2]  # the denial itself is audited


def test_rollback_from_the_history_page(client, release_manager, promoted):
    client.force_login(release_manager)
    page = client.get(history_url(promoted)).content.decode()
    assert "Roll back to v1" in page and 'name="confirm_password"' in page
    assert '<input type="hidden" name="current_version" value="2">' in page
    response = client.post(rollback_url(promoted), {
        "to_version": 1, "current_version": 2, "reason": "orders broke",
        "confirm_password": USER_PASSWORD})
    assert response.status_code == 302 and response.url == history_url(promoted)
    page = client.get(history_url(promoted)).content.decode()
    assert "Rolled Production back to v1 as version 3" in page
    assert "Rolled back to v1 as v3" in page and "orders broke" in page


@pytest.mark.parametrize(("data", "status", "message"), [
    ({"to_version": 1, "reason": " "}, 400, "Give a reason for the rollback."),
    ({"to_version": 2, "reason": "x"}, 400, "Choose a version earlier than the current v2."),
    ({"to_version": "abc", "reason": "x"}, 400, "Choose the version to roll back to."),
    ({"to_version": 1, "reason": "x", "confirm_password": "wrong"}, 403,
     "Your password was not confirmed"),
])
def test_bad_rollback_input_gets_a_clear_message_and_changes_nothing(
        client, release_manager, promoted, data, status, message):
    client.force_login(release_manager)
    data = {"confirm_password": USER_PASSWORD, "current_version": 2, **data}
    before = snapshot()
    response = client.post(rollback_url(promoted), data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert snapshot()[:2] == before[:2]


def test_a_refused_rollback_keeps_the_reason_typed(client, release_manager, promoted):
    client.force_login(release_manager)
    response = client.post(rollback_url(promoted), {
        "to_version": 1, "current_version": 2, "reason": "INC-4711 bad <creds>",
        "confirm_password": "wrong"})
    html = response.content.decode()
    assert 'id="id_reason_1" maxlength="2000" required value="INC-4711 bad &lt;creds&gt;"' in html


def test_a_double_submitted_rollback_on_the_history_page_rolls_back_once(
        client, release_manager, promoted):
    client.force_login(release_manager)
    # What the page's form posts: the version to go back to and the current one it showed.
    data = {"to_version": 1, "current_version": 2, "reason": "orders broke",
            "confirm_password": USER_PASSWORD}
    first, second = client.post(rollback_url(promoted), data), client.post(rollback_url(promoted),
                                                                         data)
    assert (first.status_code, second.status_code) == (302, 302)
    assert rollback_counts() == (3, 1, 1)
    page = client.get(history_url(promoted)).content.decode()
    # A whole word: the page's random CSRF token may hold the letters "v4".
    assert "v3 (current)" in page and not re.search(r"\bv4\b", page)
    assert page.count("Rolled Production back to v1 as version 3") == 2


def test_a_promotion_landing_before_the_rollback_is_refused_on_the_history_page(
        client, release_manager, promoted):
    client.force_login(release_manager)
    page = client.get(history_url(promoted)).content.decode()
    promote_again(promoted, release_manager)  # v3 lands while the page is open
    before = snapshot()
    response = client.post(rollback_url(promoted), {
        "to_version": 1, "current_version": 2, "reason": "INC-9 orders broke",
        "confirm_password": USER_PASSWORD})
    html = response.content.decode()
    assert response.status_code == 400
    assert ("Production changed since you reviewed it (it is now v3): review the rollback "
            "again.") in html
    assert '<input type="hidden" name="current_version" value="2">' in page
    assert 'id="id_reason_1" maxlength="2000" required value="INC-9 orders broke"' in html
    assert "v3 (current)" in html
    assert '<input type="hidden" name="current_version" value="3">' in html
    assert snapshot()[:2] == before[:2]  # the password confirmation itself is audited
    # Reviewed again (the page now shows v3), the same choice goes ahead.
    assert client.post(rollback_url(promoted), {
        "to_version": 1, "current_version": 3, "reason": "INC-9 orders broke",
        "confirm_password": USER_PASSWORD}).status_code == 302
    assert rollback_counts() == (4, 1, 1)


def test_a_refused_password_keeps_the_version_first_reviewed(client, release_manager,
                                                             promoted):
    client.force_login(release_manager)
    promote_again(promoted, release_manager)  # v3, after the page showed v2
    response = client.post(rollback_url(promoted), {
        "to_version": 1, "current_version": 2, "reason": "x", "confirm_password": "wrong"})
    assert response.status_code == 403
    assert '<input type="hidden" name="current_version" value="2">' in response.content.decode()


@pytest.mark.parametrize("current", [None, "", "abc", "0"])
def test_a_rollback_form_without_the_current_version_it_showed_is_refused(
        client, release_manager, promoted, current):
    client.force_login(release_manager)
    data = {"to_version": 1, "reason": "x", "confirm_password": USER_PASSWORD}
    if current is not None:
        data["current_version"] = current
    response = client.post(rollback_url(promoted), data)
    assert response.status_code == 400
    assert "This page was out of date" in response.content.decode()
    assert rollback_counts() == (2, 0, 0)


def test_rollback_needs_post(client, release_manager, promoted):
    client.force_login(release_manager)
    assert client.get(rollback_url(promoted)).status_code == 405


def test_the_integration_page_shows_promotions_with_who_when_why(client, lead, promoted):
    client.force_login(lead)
    response = client.get(reverse("dashboard:integration", args=[promoted.uuid]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Promoted Sandbox v1 as v2, with Sandbox's credentials" in html
    assert "launch" in html and "release" in html
    assert history_url(promoted) in html
    assert KNOWN_SECRET not in html and PRODUCTION_SECRET not in html


def test_the_integration_page_names_a_promoted_version_as_the_history_does(client, lead,
                                                                           promoted):
    # It printed "(promoted from sandbox)": the environment's name lower-cased.
    client.force_login(lead)
    html = client.get(reverse("dashboard:integration", args=[promoted.uuid])).content.decode()
    assert "· Promoted from Sandbox</dd>" in html and "promoted from sandbox" not in html
