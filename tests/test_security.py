"""The security baseline: sign-in everywhere, lockout with a cool-off, session limits, CSP without
inline code, no caching of package pages, and posted secrets hidden from error reports."""

from __future__ import annotations

import html
import itertools
import re
import time
import uuid as uuid_module
from datetime import timedelta
from urllib.parse import urljoin

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from dashboard.middleware import AUTH_STARTED_KEY
from onboarding.models import PackageVersion

LOGIN = "/accounts/login/"
PASSWORD = "unused-in-tests-1234"  # conftest's password for every user
PACKAGES = "/admin/onboarding/onboardingpackage/"


def _site_urls(version: PackageVersion | None) -> list[str]:
    """Every route outside the admin, with ids of real objects where the route takes one."""
    values: dict[str, list[str]] = {
        "uuid": [str(uuid_module.uuid4())], "environment": ["sandbox", "production"],
    }
    if version is not None:
        values["uuid"] = [str(version.package.uuid), str(version.package.integration.uuid)]
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            assert isinstance(pattern, URLPattern)
            names = list(pattern.pattern.converters)
            if not set(names) <= set(values):
                continue
            for combination in itertools.product(*(values[name] for name in names)):
                route = prefix + str(pattern.pattern)
                for name, value in zip(names, combination, strict=True):
                    route = re.sub(rf"<\w+:{name}>", value, route)
                found.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return found


def _login(client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


# --- sign-in required -------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"


def test_every_page_but_sign_in_needs_a_signed_in_user(client, sandbox_version):
    urls = _site_urls(sandbox_version)
    assert len(urls) > 3
    for url in urls:
        if url == LOGIN:
            continue
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code in (302, 405), f"{method.__name__} {url}"
            if response.status_code == 302:
                assert response["Location"].startswith(LOGIN), url
    assert client.get(LOGIN).status_code == 200


def test_admin_pages_need_a_signed_in_staff_user(client, sandbox_version):
    response = client.get(f"{PACKAGES}{sandbox_version.package.pk}/change/")
    assert response.status_code == 302
    assert response["Location"].startswith((LOGIN, "/admin/login/"))


# --- lockout with a cool-off ------------------------------------------------------------------

def test_repeated_failures_pause_sign_in_then_the_pause_ends(client, lead):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "lead", "wrong-password").status_code == 200
    assert _login(client, "lead", "wrong-password").status_code == 429  # the limit: paused

    locked = _login(client, "lead")  # the right password, but still paused
    assert locked.status_code == 429
    assert b"Sign-in paused" in locked.content
    assert b"Try again in 15 minutes" in locked.content  # AXES_COOLOFF, not "a few minutes"
    assert "_auth_user_id" not in client.session

    # The cool-off passes: every recorded failure is older than AXES_COOLOFF_TIME.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = _login(client, "lead")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(lead.pk)


def test_the_lockout_is_per_user_name_and_address(client, lead, auditor):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "lead", "wrong-password")
    assert _login(client, "auditor").status_code == 302


def _login_via(client, address: str, username: str, password: str = PASSWORD):
    # As nginx passes it on: the peer is the proxy, the client is the last X-Forwarded-For hop
    # (any entries left of it are the client's own to write).
    return client.post(LOGIN, {"username": username, "password": password},
                       REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.9.9.9, {address}")


def test_behind_a_trusted_proxy_the_lockout_and_the_audit_use_the_clients_address(
        client, lead, settings):
    from onboarding.models import AuditEvent
    from onboarding.services.audit import AuditAction

    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login_via(client, "203.0.113.9", "lead", "wrong-password")
    # The attacker's address is paused; the lead, signing in from elsewhere, is not.
    assert _login_via(client, "203.0.113.9", "lead").status_code == 429
    assert _login_via(client, "198.51.100.7", "lead").status_code == 302
    failed = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED)
    assert set(failed.values_list("ip", flat=True)) == {"203.0.113.9"}
    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip == "198.51.100.7"


def test_without_a_trusted_proxy_a_forwarded_for_header_is_not_believed(client, lead):
    _login_via(client, "203.0.113.9", "lead")
    from onboarding.models import AuditEvent
    from onboarding.services.audit import AuditAction

    assert AuditEvent.objects.get(action=AuditAction.LOGIN).ip == "127.0.0.1"


@pytest.mark.parametrize("url", [LOGIN, "/admin/login/"])
def test_a_user_name_longer_than_any_account_has_is_a_field_error(client, db, url):
    # Django's sign-in forms never enforced the name's max_length: a 300-character name went
    # on to django-axes, whose varchar(255) column made PostgreSQL answer with a 500.
    name = "n" * 300
    response = client.post(url, {"username": name, "password": "whatever-1"})
    assert response.status_code == 200
    assert b"at most 150 characters" in response.content
    assert f'value="{name}"'.encode() in response.content  # what was typed is kept
    assert not AccessAttempt.objects.exists()


def test_the_cool_off_is_not_a_permanent_lock():
    assert settings.AXES_COOLOFF_TIME is not None
    assert timedelta(0) < settings.AXES_COOLOFF_TIME <= timedelta(hours=24)


# --- session limits ---------------------------------------------------------------------------

def test_an_idle_session_expires(client, lead):
    assert _login(client, "lead").status_code == 302
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_TIMEOUT.total_seconds() <= 3600
    assert client.get("/").status_code == 200

    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_an_idle_session_says_it_ended_on_the_sign_in_page(client, lead):
    _login(client, "lead")
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/audit/?page=2")
    assert response["Location"] == f"{LOGIN}?next=/audit/%3Fpage%3D2&expired=1"
    assert b"Your session ended" in client.get(response["Location"]).content


def test_signing_in_for_the_first_time_says_nothing_about_an_ended_session(client, lead):
    assert client.get("/")["Location"] == f"{LOGIN}?next=/"


HTMX_FROM_INTEGRATION_PAGE = {"HTTP_HX_REQUEST": "true",
                              "HTTP_HX_CURRENT_URL": "http://testserver/integrations/x/?tab=1"}


def _assert_htmx_sent_to_sign_in(response) -> None:
    """htmx navigates to HX-Redirect; a 302 it would follow and swap the sign-in page in."""
    assert response.status_code == 200
    assert response.content == b""
    assert response["HX-Redirect"] == (
        f"{LOGIN}?next=/integrations/x/%3Ftab%3D1&expired=1")


def test_htmx_after_an_idle_expiry_is_sent_to_sign_in_and_back(client, lead, sandbox_version):
    _login(client, "lead")
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    response = client.post(f"/packages/{sandbox_version.package.uuid}/check/",
                           **HTMX_FROM_INTEGRATION_PAGE)
    _assert_htmx_sent_to_sign_in(response)


def test_htmx_after_the_absolute_lifetime_is_sent_to_sign_in_and_back(client, lead,
                                                                      sandbox_version):
    _login(client, "lead")
    session = client.session
    session[AUTH_STARTED_KEY] = time.time() - settings.SESSION_MAX_AGE.total_seconds() - 1
    session.save()
    response = client.post(f"/packages/{sandbox_version.package.uuid}/check/",
                           **HTMX_FROM_INTEGRATION_PAGE)
    _assert_htmx_sent_to_sign_in(response)
    assert "_auth_user_id" not in client.session


def test_htmx_from_a_foreign_page_is_not_sent_back_there(client, sandbox_version):
    response = client.post(f"/packages/{sandbox_version.package.uuid}/check/",
                           HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://evil.test/x/")
    assert response["HX-Redirect"] == f"{LOGIN}?expired=1"


def test_activity_renews_the_idle_timeout(client, lead):
    _login(client, "lead")
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() + timedelta(seconds=30))
    assert client.get("/").status_code == 200
    renewed = Session.objects.get(session_key=key).expire_date
    assert renewed > timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_a_session_ends_after_its_absolute_lifetime_however_active(client, lead):
    _login(client, "lead")
    assert client.get("/").status_code == 200
    session = client.session
    session[AUTH_STARTED_KEY] = time.time() - settings.SESSION_MAX_AGE.total_seconds() - 1
    session.save()

    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/&expired=1"
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"].startswith(LOGIN)


def test_a_session_within_its_lifetime_keeps_working(client, lead):
    _login(client, "lead")
    session = client.session
    session[AUTH_STARTED_KEY] = time.time() - settings.SESSION_MAX_AGE.total_seconds() + 60
    session.save()
    assert client.get("/").status_code == 200


# --- CSP, no inline code, no caching ----------------------------------------------------------

def _assert_no_inline_code(url: str, html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
        assert "src=" in tag, f"inline <script> on {url}: {tag}"
    assert not re.search(r"<style\b", html, flags=re.IGNORECASE), f"<style> on {url}"
    assert not re.search(r"\sstyle\s*=", html, flags=re.IGNORECASE), f"style= on {url}"
    assert not re.search(r"\son[a-z]+\s*=\s*[\"']", html, flags=re.IGNORECASE), \
        f"inline event handler on {url}"


def test_pages_send_a_strict_csp_and_carry_no_inline_code(client, superuser, sandbox_version):
    login_page = client.get(LOGIN)
    pages = [(LOGIN, login_page)]
    client.force_login(superuser)
    for url in ["/", f"/integrations/{sandbox_version.package.integration.uuid}/",
                PACKAGES, f"{PACKAGES}{sandbox_version.package.pk}/change/"]:
        pages.append((url, client.get(url)))
    for url, response in pages:
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        _assert_no_inline_code(url, response.content.decode())


def test_the_favicon_is_served_at_the_root_to_anyone_and_linked_from_every_page(client, db):
    # Browsers ask for /favicon.ico on pages that link no icon (the admin's): no 404 there.
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x01\x00")  # an ICO
    linked = re.search(r'<link rel="icon" href="([^"]+)">', client.get(LOGIN).content.decode())
    assert linked is not None
    assert client.get(linked[1]).status_code == 200


def test_pages_showing_a_package_are_never_cached(client, superuser, sandbox_version):
    client.force_login(superuser)
    for url in ["/", f"/integrations/{sandbox_version.package.integration.uuid}/",
                PACKAGES, f"{PACKAGES}{sandbox_version.package.pk}/change/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


def test_pages_cannot_be_framed_or_sniffed(client, db):
    response = client.get(LOGIN)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


# --- posted secrets never reach an error report -----------------------------------------------

def _hidden(response, name: str) -> bool:
    params = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    return name in params and set(params[name]) == {"*"}


def test_the_sign_in_password_is_hidden_from_error_reports(client, lead):
    response = client.post(LOGIN, {"username": "lead", "password": "typed-password"})
    assert _hidden(response, "password")


def test_every_form_with_a_password_field_hides_it_from_error_reports(
        client, superuser, sandbox_version):
    """Whatever page shows a password input, its POST is marked sensitive for those names."""
    client.force_login(superuser)
    forms_found = 0
    urls = [*_site_urls(sandbox_version), f"{PACKAGES}{sandbox_version.package.pk}/change/",
            f"{PACKAGES}add/"]
    for url in urls:
        page = client.get(url)
        if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
            continue
        for attributes, body in re.findall(r"<form\b([^>]*)>(.*?)</form>",
                                           page.content.decode(), flags=re.DOTALL):
            names = {name for tag in re.findall(r"<input\b[^>]*>", body)
                     if 'type="password"' in tag
                     for name in re.findall(r'name="([^"]+)"', tag)}
            if not names:
                continue
            forms_found += 1
            action = re.search(r'action="([^"]*)"', attributes)
            target = urljoin(url, html.unescape(action.group(1))) if action else url
            response = client.post(target, {name: "typed-secret-value" for name in names})
            for name in names:
                assert _hidden(response, name), f"{target} (form on {url}) does not hide {name}"
    assert forms_found >= 2  # at least the password change page and the package admin


# --- the audit chain survives any client address ----------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("address", ["2001:DB8:0:0:0:0:0:1", "::FFFF:10.0.0.1", "fe80::1%eth0",
                                     "203.0.113.9", "not-an-address"])
def test_an_unusual_client_address_does_not_break_the_audit_chain(address):
    from onboarding.services.audit import RequestMeta, audit_record, audit_verify

    audit_record(action="login", meta=RequestMeta(ip=address, user_agent="test"))
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_nul_character_in_the_user_agent_does_not_fail_the_audited_action():
    from onboarding.services.audit import RequestMeta, audit_record, audit_verify

    event = audit_record(action="login", meta=RequestMeta(ip="127.0.0.1", user_agent="a\x00b"))
    assert event.user_agent == "ab"
    assert audit_verify().ok


def test_a_mistyped_confirmation_leaves_no_posted_secret_in_the_lockout_records(
        client, release_manager, integration):
    """django-axes stores the POST of a failed authenticate(); a Production edit's password
    confirmation posts the package form with it. Twice, to cover axes' update of its row."""
    from tests.test_package_form import USER_PASSWORD, edit_post, edit_url

    secret, api_password, typo = "prod-client-secret-Xy9Qw2", "prod-api-pass-Lm3Nb8", "My-Typo-1"
    client.post("/accounts/login/", {"username": "release", "password": USER_PASSWORD})
    paste = ("curl -X POST https://accounts.iqmetrix.net/v1/oauth2/token -d 'grant_type=password"
             f"&client_id=prodid&client_secret={secret}&username=api@x.com&password={api_password}'")
    for _ in range(2):
        response = client.post(edit_url(integration, "production"), edit_post(
            client_id="prodid", client_secret=secret, username="api@x.com",
            password=api_password, paste=paste, confirm_password=typo))
        assert "That is not your password." in response.content.decode()
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 2  # still counted for the lockout
    stored = f"{attempt.post_data}\n{attempt.get_data}"
    for value in (secret, api_password, typo, "prodid"):
        assert value not in stored


@pytest.mark.django_db
def test_the_migration_blanks_the_forms_axes_kept_before():
    from importlib import import_module

    from django.apps import apps

    # bulk_create sends no pre_save: a row as an older release left it.
    AccessAttempt.objects.bulk_create([AccessAttempt(
        username="release", ip_address="127.0.0.1", user_agent="x", get_data="",
        post_data="client_secret=prod-secret-1", http_accept="*/*", path_info="/",
        failures_since_start=1)])
    import_module("onboarding.migrations.0008_forget_axes_post_data").forget_post_data(apps, None)
    assert AccessAttempt.objects.get().post_data == ""
