"""Admin for integrations and packages: secrets are write-only, identifiers masked, every save a
new version, versions read-only; and no admin or dashboard page ever shows a secret."""

from __future__ import annotations

import itertools
import re
import time
import uuid as uuid_module
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

import onboarding.admin as admin_module
from onboarding.models import (
    AuditEvent,
    ConnectivityCheck,
    Integration,
    OnboardingPackage,
    PackageVersion,
    Role,
)
from onboarding.services.audit import AuditAction
from onboarding.services.grants import grant_create
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user, onboard

CLIENT_ID = "client-abcdef123456"
USERNAME = "api.user@example.com"
ACCESS_TOKEN = "at-Vq3LxM8cNd2Wr7Ks"
REFRESH_TOKEN = "rt-Pm5TgH9jFb3Yc1Zx"
SECRETS = (KNOWN_SECRET, KNOWN_PASSWORD, ACCESS_TOKEN, REFRESH_TOKEN)
PACKAGES = "/admin/onboarding/onboardingpackage/"
INTEGRATIONS = "/admin/onboarding/integration/"


@pytest.fixture
def known(db):
    """Sandbox and Production packages with known secrets, and a live token from a check."""
    sandbox = onboard()
    production = onboard(environment="production")
    ConnectivityCheck.objects.create(
        package=sandbox.package, version=sandbox, sent_at=timezone.now(), outcome="ok",
        message="ok", expires_at=timezone.now() + timezone.timedelta(hours=1),
        access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN, token_fingerprint="ab12cd34",
    )
    return sandbox, production


def _assert_shows_no_secret(url: str, html: str, *, identifiers: bool) -> None:
    for value in SECRETS:
        assert value not in html, f"{url} shows {value}"
    if identifiers:
        assert CLIENT_ID not in html, f"{url} shows the full client ID"
        assert USERNAME not in html, f"{url} shows the full user name"


def _form_data(package: OnboardingPackage, **values: str) -> dict[str, str]:
    """What the change form posts with every field left as the page shows it."""
    version = package.current_version
    count = package.versions.count()
    data = {
        "client_id": "", "username": "", "client_secret": "", "password": "",
        "company_id": str(version.company_id or ""), "location_id": version.location_id,
        "response_format": version.response_format, "notes": version.notes,
        "versions-TOTAL_FORMS": str(count), "versions-INITIAL_FORMS": str(count),
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }
    data.update(values)
    return data


# --- nothing secret on any page ---------------------------------------------------------------

def confirm_password(client) -> None:
    response = client.post("/accounts/confirm/", {"password": "unused-in-tests-1234",
                                                  "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_no_admin_page_shows_a_secret_or_a_full_identifier(client, superuser, known):
    sandbox, _ = known
    package, integration = sandbox.package, sandbox.package.integration
    client.force_login(superuser)
    confirm_password(client)  # the delete page asks for it first
    urls = [
        "/admin/", PACKAGES, f"{PACKAGES}add/", f"{PACKAGES}{package.pk}/change/",
        f"{PACKAGES}{package.pk}/history/", f"{PACKAGES}?q=Acme",
        INTEGRATIONS, f"{INTEGRATIONS}add/", f"{INTEGRATIONS}{integration.pk}/change/",
        f"{INTEGRATIONS}{integration.pk}/history/", f"{INTEGRATIONS}{integration.pk}/delete/",
        "/admin/onboarding/auditevent/",
    ]
    urls += [f"/admin/onboarding/auditevent/{e.pk}/change/" for e in AuditEvent.objects.all()]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_shows_no_secret(url, response.content.decode(), identifiers=True)


def _dashboard_patterns() -> list[tuple[str, URLPattern]]:
    found = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                found.append((prefix + str(pattern.pattern), pattern))

    walk(get_resolver().url_patterns, "")
    return found


def test_no_dashboard_page_shows_a_secret(client, superuser, known):
    """Every GET page of the site, with every object id that fits its URL."""
    sandbox, production = known
    candidates = [sandbox.package.uuid, production.package.uuid,
                  sandbox.package.integration.uuid, sandbox.uuid,
                  ConnectivityCheck.objects.get().uuid, uuid_module.uuid4()]
    client.force_login(superuser)
    seen = 0
    values = {"uuid": [str(value) for value in candidates],
              "environment": ["sandbox", "production"]}
    for route, pattern in _dashboard_patterns():
        names = list(pattern.pattern.converters)
        if not set(names) <= set(values):
            continue
        urls = []
        for combination in itertools.product(*(values[name] for name in names)):
            url = route
            for name, value in zip(names, combination, strict=True):
                url = re.sub(rf"<\w+:{name}>", value, url)
            urls.append("/" + url)
        for url in urls:
            response = client.get(url)
            assert response.status_code < 500, url
            if response.status_code in (404, 405):
                continue
            seen += 1
            body = b"".join(response) if response.streaming else response.content
            _assert_shows_no_secret(url, body.decode(errors="replace"), identifiers=False)
    assert seen >= 3  # at least the login, overview and one package page were looked at


# --- write-only secrets, masked identifiers ---------------------------------------------------

def test_the_change_form_says_set_and_masks_identifiers(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    html = client.get(f"{PACKAGES}{sandbox.package.pk}/change/").content.decode()
    assert "Currently: set." in html
    assert "Currently: cl…56." in html  # client ID: first and last characters
    assert "Currently: ap…om." in html  # user name
    assert 'type="password"' in html
    assert CLIENT_ID not in html and USERNAME not in html


def test_a_missing_secret_shows_not_set(client, superuser, db):
    version = onboard(client_secret=None, password=None)
    client.force_login(superuser)
    html = client.get(f"{PACKAGES}{version.package.pk}/change/").content.decode()
    assert html.count("Currently: not set.") == 2


def test_the_changelist_masks_the_client_id(client, superuser, known):
    client.force_login(superuser)
    html = client.get(PACKAGES).content.decode()
    assert "cl…56" in html
    assert CLIENT_ID not in html


def test_saving_with_blank_secrets_keeps_them_and_makes_version_2(client, superuser, known):
    sandbox, _ = known
    package = sandbox.package
    client.force_login(superuser)
    response = client.post(f"{PACKAGES}{package.pk}/change/",
                           _form_data(package, company_id="777", notes="new store"))
    assert response.status_code == 302, response.content.decode()[:2000]

    package.refresh_from_db()
    current = package.current_version
    assert current.number == 2
    assert (current.client_secret, current.password) == (KNOWN_SECRET, KNOWN_PASSWORD)
    assert (current.client_id, current.username) == (CLIENT_ID, USERNAME)
    assert (current.company_id, current.notes) == (777, "new store")
    assert current.created_by == superuser
    assert PackageVersion.objects.get(pk=sandbox.pk).company_id == 14146  # v1 untouched
    event = AuditEvent.objects.filter(action=AuditAction.PACKAGE_EDIT).get()
    assert event.details["changed"] == ["company_id", "notes"]


def test_a_change_form_opened_before_someone_elses_save_is_refused(client, superuser, known):
    sandbox, _ = known
    package = sandbox.package
    client.force_login(superuser)
    url = f"{PACKAGES}{package.pk}/change/"
    page = client.get(url).content.decode()
    base = re.search(r'name="base_version" value="(\d+)"', page).group(1)
    assert base == "1"
    mine = _form_data(package, notes="Ask for Dana", base_version=base)  # as v1 showed it
    onboard(notes="Use location 7", location_id="loc-7")  # v2, saved meanwhile
    events = AuditEvent.objects.count()

    response = client.post(url, mine)
    assert response.status_code == 200
    html = response.content.decode()
    assert ("Someone saved version 2 since you opened this form, changing location ID and "
            "notes. The form now shows their location ID. You changed the notes too: yours is "
            "kept, compare it with version 2. Review the form and save again.") in html
    package.refresh_from_db()
    assert (package.current_version.number, package.current_version.notes) == (
        2, "Use location 7")
    assert AuditEvent.objects.count() == events
    assert "Ask for Dana" in html
    # The field left alone shows the newer value, so saving the page as shown keeps it.
    shown = re.search(r'name="location_id" value="([^"]*)"', html).group(1)
    assert shown == "loc-7"
    # The page is now based on v2: saving again, having looked, goes ahead.
    assert re.search(r'name="base_version" value="2"', html)
    assert client.post(url, mine | {"base_version": "2", "location_id": shown}).status_code == 302
    package.refresh_from_db()
    assert (package.current_version.number, package.current_version.notes,
            package.current_version.location_id) == (3, "Ask for Dana", "loc-7")


def test_saving_a_new_secret_stores_it_without_echoing_it(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    url = f"{PACKAGES}{sandbox.package.pk}/change/"
    response = client.post(url, _form_data(sandbox.package, client_secret="cs-brand-new-1"),
                           follow=True)
    assert response.status_code == 200
    assert "cs-brand-new-1" not in response.content.decode()
    assert OnboardingPackage.objects.get(pk=sandbox.package.pk).current_version.client_secret \
        == "cs-brand-new-1"


def test_a_form_with_errors_does_not_echo_the_secret_typed(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    response = client.post(f"{PACKAGES}{sandbox.package.pk}/change/",
                           _form_data(sandbox.package, client_secret="cs-typed-99",
                                      password="pw-typed-99", username="not-an-email"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "e-mail address" in html
    assert "cs-typed-99" not in html and "pw-typed-99" not in html
    assert sandbox.package.versions.count() == 1


def test_the_admin_form_posts_are_hidden_from_error_reports(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    response = client.post(f"{PACKAGES}{sandbox.package.pk}/change/",
                           _form_data(sandbox.package, client_secret="cs-hidden-1",
                                      password="pw-hidden-1", username="not-an-email"))
    params = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert params["client_secret"] != "cs-hidden-1"
    assert params["password"] != "pw-hidden-1"
    assert set(params["client_secret"]) == {"*"}


def test_adding_a_package_in_the_admin_stores_version_1(client, superuser, known):
    integration = Integration.objects.create(name="New POS", slug="new-pos")
    client.force_login(superuser)
    data = {
        "integration": str(integration.pk), "environment": "sandbox",
        "client_id": "new-client-0001", "username": "new.user@example.com",
        "client_secret": "new-secret-1", "password": "new-password-1",
        "company_id": "1", "location_id": "", "response_format": "json", "notes": "",
        "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000",
    }
    response = client.post(f"{PACKAGES}add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    created = OnboardingPackage.objects.get(integration=integration)
    assert created.current_version.number == 1
    assert created.current_version.password == "new-password-1"
    assert "new-secret-1" not in client.get(response["Location"]).content.decode()


# --- versions are read-only -------------------------------------------------------------------

def test_versions_are_shown_read_only(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    html = client.get(f"{PACKAGES}{sandbox.package.pk}/change/").content.decode()
    assert "client secret: set, password: set" in html
    # Only the hidden ids of Django's formset: no version field can be edited.
    tags = re.findall(r'<(?:input|select|textarea)[^>]*name="versions-\d+-[^"]*"[^>]*>', html)
    assert tags and all('type="hidden"' in tag for tag in tags)
    assert client.get("/admin/onboarding/packageversion/").status_code == 404


def test_a_stored_version_cannot_be_saved_again(known):
    sandbox, _ = known
    sandbox.notes = "rewritten history"
    with pytest.raises(ValidationError):
        sandbox.save()
    assert PackageVersion.objects.get(pk=sandbox.pk).notes == ""


def test_the_package_slot_cannot_move_to_another_environment(client, superuser, known):
    sandbox, _ = known
    client.force_login(superuser)
    response = client.post(f"{PACKAGES}{sandbox.package.pk}/change/",
                           _form_data(sandbox.package, environment="production"))
    assert response.status_code == 302
    assert OnboardingPackage.objects.get(pk=sandbox.package.pk).environment == "sandbox"


def test_the_changelist_lists_only_packages_the_user_may_view(client, known):
    from django.contrib.auth.models import Permission, User

    staff = User.objects.create_user(username="sandbox-staff", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_sandbox"))
    client.force_login(staff)

    response = client.get(PACKAGES)
    assert response.status_code == 200
    assert [p.environment for p in response.context["cl"].result_list] == ["sandbox"]
    production = OnboardingPackage.objects.get(environment="production")
    assert client.get(f"{PACKAGES}{production.pk}/change/").status_code in (302, 403)


def test_an_unreadable_package_asks_for_all_four_credentials_again(client, superuser, db):
    from django.test import override_settings

    from tests.manage_subprocess import key_entry

    with override_settings(FIELD_ENCRYPTION_KEYS=key_entry("gone")):
        lost = onboard("Lost keys POS")
    package = lost.package
    client.force_login(superuser)
    url = f"{PACKAGES}{package.pk}/change/"

    kept = client.post(url, _form_data(package))
    assert kept.status_code == 200
    assert "cannot be decrypted with the configured keys; enter all four" in \
        kept.content.decode()
    assert package.versions.count() == 1

    entered = client.post(url, _form_data(package, client_id=CLIENT_ID, username=USERNAME,
                                          client_secret="cs-re-entered", password="pw-re-entered"))
    assert entered.status_code == 302
    current = OnboardingPackage.objects.get(pk=package.pk).current_version
    assert (current.number, current.client_secret, current.password) == \
        (2, "cs-re-entered", "pw-re-entered")


def test_a_superuser_deletes_an_integration_with_its_history_and_the_audit_keeps_it(
        client, superuser, known):
    from onboarding.services.audit import audit_verify

    integration = known[0].package.integration
    client.force_login(superuser)
    url = f"{INTEGRATIONS}{integration.pk}/delete/"
    page = client.get(url)
    assert page.status_code == 302 and page["Location"].startswith("/accounts/confirm/")
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert Integration.objects.exists()  # nothing deleted without the password

    confirm_password(client)
    page = client.get(url)
    assert page.status_code == 200
    assert "protected" not in page.content.decode().lower()

    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Integration.objects.exists()
    assert not PackageVersion.objects.exists() and not ConnectivityCheck.objects.exists()
    event = AuditEvent.objects.filter(action=AuditAction.INTEGRATION_DELETE).get()
    assert (event.integration_name, event.actor_name) == ("Acme POS", superuser.username)
    assert audit_verify().ok


def test_making_and_renaming_an_integration_in_the_admin_is_audited(client, superuser):
    client.force_login(superuser)
    form = {"name": "Admin Made", "slug": "admin-made", "owner": "", "notes": ""}
    assert client.post(f"{INTEGRATIONS}add/", form).status_code == 302
    integration = Integration.objects.get(slug="admin-made")
    made = AuditEvent.objects.get(action=AuditAction.INTEGRATION_CREATE)
    assert (made.actor_name, made.integration_name, made.target) == ("root", "Admin Made",
                                                                     "admin-made")
    change = f"{INTEGRATIONS}{integration.pk}/change/"
    form.update(name="Renamed", slug="renamed", owner=str(superuser.pk))
    assert client.post(change, form).status_code == 302
    renamed = AuditEvent.objects.get(action=AuditAction.INTEGRATION_EDIT)
    assert renamed.details == {"changed": ["name", "slug"],
                               "before": {"name": "Admin Made", "slug": "admin-made"}}
    assert client.post(change, form).status_code == 302  # nothing changed: nothing recorded
    assert AuditEvent.objects.filter(action=AuditAction.INTEGRATION_EDIT).count() == 1


def test_only_a_superuser_may_delete_an_integration(client, release_manager, known):
    integration = known[0].package.integration
    client.force_login(release_manager)
    assert client.post(f"{INTEGRATIONS}{integration.pk}/delete/", {"post": "yes"}) \
        .status_code == 403
    assert Integration.objects.filter(pk=integration.pk).exists()


def test_the_delete_selected_action_deletes_through_the_service(client, superuser, known):
    integration = known[0].package.integration
    client.force_login(superuser)
    delete = {"action": "delete_selected", "post": "yes",
              "_selected_action": [str(integration.pk)]}
    response = client.post(INTEGRATIONS, delete)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    assert Integration.objects.exists()
    confirm_password(client)
    response = client.post(INTEGRATIONS, delete)
    assert response.status_code == 302
    assert not Integration.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.INTEGRATION_DELETE).count() == 1


@pytest.mark.parametrize(("url", "action"), [
    (INTEGRATIONS, "delete_selected"), (INTEGRATIONS, "promote_to_production"),
    (INTEGRATIONS, "roll_back_production"), ("/admin/auth/user/", "delete_selected"),
    ("/admin/auth/group/", "delete_selected"),
])
def test_a_bulk_action_on_a_selection_that_is_no_row_changes_nothing(client, superuser, known,
                                                                     url, action):
    # Django's admin filtered pk__in=["abc"] as posted: a ValueError, a 500.
    integration = known[0].package.integration
    client.force_login(superuser)
    confirm_password(client)
    response = client.post(url, {"action": action, "post": "yes", "reason": "r",
                                 "_selected_action": [str(integration.pk), "abc", "\x00"]},
                           follow=True)
    assert response.status_code == 200
    assert b"The selection names rows that do not exist" in response.content
    assert Integration.objects.filter(pk=integration.pk).exists()
    assert User.objects.filter(pk=superuser.pk).exists()


@pytest.mark.parametrize(("actions", "index"), [
    (["delete_selected", "export"], "0"), (["export", "delete_selected"], "1"),
    (["export", "delete_selected"], "-1"), (["delete_selected", "delete_selected"], "0"),
])
def test_deleting_by_a_second_action_value_still_asks_for_the_password(client, superuser, known,
                                                                       actions, index):
    # Django runs getlist("action")[index]; the step-up gate once read only the last value, so
    # "delete_selected, export, index 0" deleted the integration without a confirmation.
    integration = known[0].package.integration
    client.force_login(superuser)
    response = client.post(INTEGRATIONS, {"action": actions, "index": index, "post": "yes",
                                          "_selected_action": [str(integration.pk)]})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    assert Integration.objects.filter(pk=integration.pk).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.INTEGRATION_DELETE).exists()


@pytest.mark.parametrize("method", ["delete_queryset", "delete_model"])
def test_the_integration_admin_deletes_nothing_without_a_fresh_confirmation(rf, superuser, known,
                                                                           method):
    # Whatever page or action leads there, the deletion itself checks the step-up too.
    from django.contrib import admin
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.exceptions import PermissionDenied

    integration = known[0].package.integration
    request = rf.post(INTEGRATIONS)
    request.user, request.session = superuser, SessionStore()
    model_admin = admin.site.get_model_admin(Integration)
    target = Integration.objects.all() if method == "delete_queryset" else integration
    with pytest.raises(PermissionDenied):
        getattr(model_admin, method)(request, target)
    assert Integration.objects.filter(pk=integration.pk).exists()


@pytest.mark.parametrize("value", ["99999999999999999999999", "-99999999999999999999999",
                                   "9223372036854775808"])
@pytest.mark.parametrize(("url", "action"), [
    (INTEGRATIONS, "delete_selected"), (INTEGRATIONS, "promote_to_production"),
    (INTEGRATIONS, "roll_back_production"), ("/admin/auth/user/", "delete_selected"),
    ("/admin/auth/group/", "delete_selected"),
])
def test_a_bulk_action_on_a_key_beyond_the_column_changes_nothing(client, superuser, known,
                                                                  url, action, value):
    # A key no integer column can hold: SQLite raised OverflowError binding it, a 500.
    integration = known[0].package.integration
    client.force_login(superuser)
    confirm_password(client)
    response = client.post(url, {"action": action, "post": "yes", "reason": "r",
                                 "_selected_action": [str(integration.pk), value]},
                           follow=True)
    assert response.status_code == 200
    assert b"The selection names rows that do not exist" in response.content
    assert Integration.objects.filter(pk=integration.pk).exists()
    assert User.objects.filter(pk=superuser.pk).exists()


def _expire_confirmation(client) -> None:
    from dashboard.stepup import SESSION_KEY

    session = client.session
    session[SESSION_KEY] = time.time() - 24 * 3600
    session.save()


def test_a_production_edit_whose_confirmation_expired_is_kept_and_asks_for_the_password(
        client, superuser, known):
    _, production = known
    package = production.package
    url = f"{PACKAGES}{package.pk}/change/"
    client.force_login(superuser)
    confirm_password(client)
    assert client.get(url).status_code == 200
    _expire_confirmation(client)  # the form stayed open past SUDO_MINUTES

    data = _form_data(package, notes="typed for eleven minutes", client_secret="cs-new-0001")
    response = client.post(url, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "typed for eleven minutes" in html and 'name="confirm_password"' in html
    assert "cs-new-0001" not in html  # a secret is never echoed: the page says to enter it again
    assert package.versions.count() == 1

    response = client.post(url, {**data, "confirm_password": "wrong"})
    assert "Your password was not confirmed" in response.content.decode()
    assert package.versions.count() == 1

    response = client.post(url, {**data, "confirm_password": "unused-in-tests-1234"})
    assert response.status_code == 302
    package.refresh_from_db()
    assert package.current_version.notes == "typed for eleven minutes"
    assert package.current_version.client_secret == "cs-new-0001"


def test_a_group_edit_whose_confirmation_expired_is_kept_and_asks_for_the_password(
        client, superuser):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="Auditors")
    url = f"/admin/auth/group/{group.pk}/change/"
    client.force_login(superuser)
    confirm_password(client)
    kept = [str(pk) for pk in group.permissions.values_list("pk", flat=True)]
    _expire_confirmation(client)
    response = client.post(url, {"name": "Auditors renamed", "permissions": kept})
    assert response.status_code == 200
    assert 'value="Auditors renamed"' in response.content.decode()
    assert Group.objects.filter(name="Auditors").exists()
    response = client.post(url, {"name": "Auditors renamed", "permissions": kept,
                                 "confirm_password": "unused-in-tests-1234"})
    assert response.status_code == 302
    assert Group.objects.filter(name="Auditors renamed").exists()


# --- names and slugs ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "slug", "field"), [
    ("acme-pos", "acme-pos-2", "name"),   # Acme POS's slug
    ("Widget", "acme-pos", "slug"),
    ("Widget", "acme-pos-x", None),
])
def test_the_admin_refuses_a_name_or_slug_another_integration_answers_to(client, superuser,
                                                                         known, name, slug,
                                                                         field):
    client.force_login(superuser)
    confirm_password(client)
    response = client.post(f"{INTEGRATIONS}add/", {"name": name, "slug": slug, "notes": ""})
    if field is None:
        assert response.status_code == 302
        assert Integration.objects.filter(name=name, slug=slug).exists()
        return
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and len(errors[field]) == 1
    assert "could not tell the two apart" in errors[field][0]
    assert list(Integration.objects.values_list("name", flat=True)) == ["Acme POS"]


def test_the_admin_refuses_a_name_with_control_characters(client, superuser, db):
    client.force_login(superuser)
    confirm_password(client)
    response = client.post(f"{INTEGRATIONS}add/",
                           {"name": "Widget\u202e POS", "slug": "widget", "notes": ""})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["name"] and "cannot hold control characters" in errors["name"][0]
    assert not Integration.objects.exists()


def test_the_admin_keeps_an_integrations_own_name_and_slug_on_save(client, superuser, known):
    integration = Integration.objects.get()
    client.force_login(superuser)
    confirm_password(client)
    response = client.post(f"{INTEGRATIONS}{integration.pk}/change/",
                           {"name": "Acme POS", "slug": "acme-pos", "notes": "kept"})
    assert response.status_code == 302
    assert Integration.objects.get().notes == "kept"


# --- a fixed number of queries however long the list ------------------------------------------

def admin_page(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_integration_list_makes_the_same_queries_for_2_and_12_owners(client, superuser):
    def add(start: int, stop: int) -> None:
        for n in range(start, stop):
            Integration.objects.create(name=f"Store {n:02d}", slug=f"store-{n:02d}",
                                       owner=make_user(f"owner{n:02d}"))

    client.force_login(superuser)
    add(0, 2)
    client.get(INTEGRATIONS)  # first visit: session bookkeeping that later visits do not repeat
    few, page = admin_page(client, INTEGRATIONS)
    assert "owner01" in page
    add(2, 12)
    many, page = admin_page(client, INTEGRATIONS)
    assert "owner11" in page
    assert few == many, f"{few} queries for 2 integrations, {many} for 12"


def test_the_grant_list_makes_the_same_queries_for_2_and_12_grants(client, superuser):
    def add(start: int, stop: int) -> None:
        for n in range(start, stop):
            integration = Integration.objects.create(name=f"Store {n:02d}", slug=f"store-{n:02d}")
            grant_create(user=make_user(f"holder{n:02d}"), role=Role.VIEW, reason="on call",
                         integration=integration, valid_until=timezone.now() + timedelta(days=1),
                         granted_by=make_user(f"granter{n:02d}", is_superuser=True))

    grants = "/admin/onboarding/accessgrant/"
    client.force_login(superuser)
    add(0, 2)
    client.get(grants)
    few, page = admin_page(client, grants)
    assert "holder01" in page and "granter01" in page
    add(2, 12)
    many, page = admin_page(client, grants)
    assert "holder11" in page and "granter11" in page and "Store 11" in page
    assert few == many, f"{few} queries for 2 grants, {many} for 12"


def add_versions(package: OnboardingPackage, count: int, *, by: str = "editor") -> None:
    """More versions of the package, each made by someone else."""
    newest = package.versions.order_by("-number").values_list("number", flat=True).first()
    for number in range(newest + 1, newest + 1 + count):
        PackageVersion.objects.create(package=package, number=number, company_id=number,
                                      created_by=make_user(f"{by}{number:02d}"))


def test_a_packages_versions_cost_the_same_queries_for_2_and_12(client, superuser, known):
    sandbox, _ = known
    url = f"{PACKAGES}{sandbox.package.pk}/change/"
    client.force_login(superuser)
    add_versions(sandbox.package, 1)
    client.get(url)
    few, page = admin_page(client, url)
    assert "editor02" in page and "2 versions, all listed." in page
    add_versions(sandbox.package, 10)
    many, page = admin_page(client, url)
    assert "editor12" in page and "12 versions, all listed." in page
    assert few == many, f"{few} queries for 2 versions, {many} for 12"


def test_a_package_lists_its_newest_20_versions_and_production_points_to_its_history(
        client, superuser, known):
    _, production = known
    package = production.package
    add_versions(package, 24)
    client.force_login(superuser)
    confirm_password(client)
    response = client.get(f"{PACKAGES}{package.pk}/change/")
    (inline,) = response.context["inline_admin_formsets"]
    assert [v.number for v in inline.formset.get_queryset()] == list(range(25, 5, -1))
    page = response.content.decode()
    assert "The newest 20 of 25 versions." in page
    history = f"/integrations/{package.integration.uuid}/production/history/"
    assert f'href="{history}"' in page
    assert client.get(history).content.decode().count("editor") == 24  # every version there

    # Sandbox's change page points to its own page of every version.
    sandbox_package = known[0].package
    add_versions(sandbox_package, 24, by="tester")
    page = client.get(f"{PACKAGES}{sandbox_package.pk}/change/").content.decode()
    assert "The newest 20 of 25 versions." in page
    versions = f"/integrations/{sandbox_package.integration.uuid}/sandbox/history/"
    assert f'href="{versions}"' in page
    assert client.get(versions).content.decode().count("tester") == 24

    # The form still saves: the versions posted are the ones listed.
    response = client.post(f"{PACKAGES}{package.pk}/change/",
                           _form_data(package, notes="after the cap"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert package.versions.count() == 26


def test_a_save_landing_between_the_forms_check_and_its_own_shows_the_refusal_not_a_500(
        client, superuser, known, monkeypatch):
    """The service checks the base version again under the package lock: a save in the moment
    since the form's clean() makes it refuse, and the page says so like any stale form."""
    sandbox, _ = known
    package = sandbox.package
    client.force_login(superuser)
    mine = _form_data(package, notes="Ask for Dana", base_version="1")
    onboard(notes="Use location 7", location_id="loc-7")  # v2, saved by someone else
    checked = admin_module.package_changed_since

    def checked_before_that_save(**kwargs):
        monkeypatch.setattr(admin_module, "package_changed_since", checked)  # once
        return None  # what the form's check saw a moment before v2 landed

    monkeypatch.setattr(admin_module, "package_changed_since", checked_before_that_save)
    events = AuditEvent.objects.count()
    response = client.post(f"{PACKAGES}{package.pk}/change/", mine)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Someone saved version 2 since you opened this form" in html
    assert "Ask for Dana" in html  # what the user typed is still in the form
    assert re.search(r'name="base_version" value="2"', html)
    package.refresh_from_db()
    assert (package.current_version.number, package.current_version.notes) == (
        2, "Use location 7")
    assert AuditEvent.objects.count() == events


def test_a_package_the_user_may_only_view_shows_its_current_values_masked(client,
                                                                         release_manager,
                                                                         sandbox_version):
    # Django's read-only rendering looked the form's fields up on the package, which has none
    # of them: every credential and setting read "None".
    import re

    client.force_login(release_manager)  # views Sandbox, may not edit it
    page = client.get(f"/admin/onboarding/onboardingpackage/{sandbox_version.package.pk}"
                      "/change/").content.decode()
    cells = [re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r'<div class="readonly">(.*?)</div>', page, re.S)]
    assert cells[2:10] == ["cl…56", "set", "ap…om", "set", "14146", "loc-1", "JSON", "not set"]
    for label in ("Client ID", "Client secret", "User name", "Password", "Company ID",
                  "Location ID", "Response format", "Notes"):
        assert f"<label>{label}:</label>" in page
    assert "None" not in cells
    assert "client-abcdef123456" not in page and "api.user@example.com" not in page
    assert not any(secret in page for secret in SECRETS)


def test_the_package_form_labels_read_as_the_dashboards(client, superuser, sandbox_version):
    client.force_login(superuser)
    client.post("/accounts/confirm/", {"password": "unused-in-tests-1234"})
    page = client.get(f"/admin/onboarding/onboardingpackage/{sandbox_version.package.pk}"
                      "/change/").content.decode()
    for label in ("Client ID", "Client secret", "User name (e-mail)", "Company ID",
                  "Location ID", "Response format"):
        assert f">{label}:</label>" in page
    assert "Client id" not in page and "Company id" not in page


def test_admin_pages_write_times_as_the_dashboard_does_with_their_zone(client, superuser):
    # Django's default "Dec. 4, 2026, 7:15 p.m." named no zone, and the dashboard writes
    # "2026-12-04 19:15 UTC": one way of writing a time everywhere (dashboard/formats).
    onboard()
    client.force_login(superuser)
    html = client.get("/admin/onboarding/auditevent/").content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", html)
    assert not re.search(r"[ap]\.m\.", html)


@pytest.mark.parametrize("path", [
    "/admin/onboarding/onboardingpackage/?environment__exact=%00",
    "/admin/onboarding/auditevent/?action__exact=%00",
    "/admin/onboarding/auditevent/?environment__exact=%00",
    "/admin/onboarding/accessgrant/?role__exact=%00",
    "/admin/onboarding/integration/?q=a%00b",
    "/admin/auth/user/?is_staff__exact=%00",
])
def test_a_nul_in_an_admin_list_filter_is_an_invalid_lookup_not_a_500(client, superuser, path):
    # PostgreSQL refuses NUL in text: the list failed as it was read (a 500 there, not on
    # SQLite). Django's answer to other bad lookups: back to the list with "?e=1".
    client.force_login(superuser)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
    assert client.get(response["Location"]).status_code == 200
