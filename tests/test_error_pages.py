"""The pages a refusal or a failure shows (DEBUG is off in the tests, as in production): in the
site's own layout and words, never Django's bare "403 Forbidden" or its debug pages."""

from __future__ import annotations

import re

import pytest
from django.test import Client

import dashboard.views.overview as overview_view
from onboarding.models import AuditEvent, ConnectivityCheck
from tests.conftest import onboard

pytestmark = pytest.mark.django_db


def test_a_refusal_says_why_in_the_sites_layout(client, lead):
    client.force_login(lead)
    response = client.get("/access/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Only auditors and administrators may see this page." in html
    assert '<nav class="site-nav"' in html and "Back to the integrations" in html


def test_a_refusal_without_a_sentence_still_reads_as_one(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/onboarding/accessgrant/add/")  # grants are made elsewhere
    assert response.status_code == 403
    assert "You do not have permission for this page." in response.content.decode()


def test_a_page_not_found_never_says_whether_it_exists(client, outsider):
    integration = onboard().package.integration
    client.force_login(outsider)
    hidden = client.get(f"/integrations/{integration.uuid}/")
    missing = client.get("/integrations/00000000-0000-0000-0000-000000000000/")
    assert hidden.status_code == missing.status_code == 404
    token = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')  # masked anew each time
    assert token.sub(b"", hidden.content) == token.sub(b"", missing.content)
    assert "Page not found" in hidden.content.decode()
    assert "Back to the integrations" in hidden.content.decode()


def test_a_form_sent_with_an_expired_token_explains_and_changes_nothing(lead):
    package = onboard().package
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    assert browser.get("/").status_code == 200  # sets the CSRF cookie
    events = AuditEvent.objects.count()
    response = browser.post(f"/packages/{package.uuid}/check/",
                            {"csrfmiddlewaretoken": "x" * 64})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form could not be sent" in html
    assert "open from before you last signed in" in html and "Nothing was changed" in html
    assert ConnectivityCheck.objects.count() == 0 and AuditEvent.objects.count() == events


def test_a_form_sent_without_the_cookie_says_to_allow_cookies(lead):
    package = onboard().package
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    response = browser.post(f"/packages/{package.uuid}/check/")
    assert response.status_code == 403
    assert "did not send the cookie" in response.content.decode()


def test_a_form_sent_over_https_without_a_referer_says_so(lead, settings):
    package = onboard().package
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    browser.get("/", secure=True)
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    response = browser.post(f"/packages/{package.uuid}/check/",
                            {"csrfmiddlewaretoken": token}, secure=True)
    assert response.status_code == 403
    assert "left out the Referer header" in response.content.decode()


def test_a_failure_shows_the_sites_own_500_page(lead, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database fell over")

    monkeypatch.setattr(overview_view, "overview_page", broken)
    onboard()
    browser = Client(raise_request_exception=False)
    browser.force_login(lead)
    response = browser.get("/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html and "has been logged" in html
    assert "database fell over" not in html and "Traceback" not in html


def test_a_request_for_an_unknown_host_gets_the_bad_request_page(client):
    response = client.get("/", HTTP_HOST="aislekeys.evil.example")
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


# --- what a card shows when htmx gets a refusal instead of the card (static/js/app.js) ---------

HTMX = {"HTTP_HX_REQUEST": "true"}


def refusal(html: str) -> str:
    """The sentence static/js/app.js puts in the card: the data-refusal element's attribute
    value, else its text, white space collapsed."""
    import html as html_module

    found = re.search(r'<(\w+)[^>]*\bdata-refusal(?:="([^"]*)")?[^>]*>(.*?)</\1>', html, re.S)
    assert found, "no data-refusal on the page"
    text = found.group(2) or re.sub(r"<[^>]+>", "", found.group(3))
    return " ".join(html_module.unescape(text).split())


def form_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_check_now_from_a_page_open_across_a_sign_in_tells_the_card_to_reload(lead):
    package = onboard().package
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    stale = form_token(browser.get("/").content.decode())  # the page left open
    # Signed out and in again in another tab, through the forms: a new CSRF secret.
    assert browser.post("/accounts/logout/", {"csrfmiddlewaretoken": stale}).status_code == 302
    sign_in = form_token(browser.get("/accounts/login/").content.decode())
    assert browser.post("/accounts/login/", {"csrfmiddlewaretoken": sign_in, "username": "lead",
                                             "password": "unused-in-tests-1234"}
                        ).status_code == 302
    response = browser.post(f"/packages/{package.uuid}/check/",
                            {"csrfmiddlewaretoken": stale, "view": "cell"}, **HTMX)
    assert response.status_code == 403
    said = refusal(response.content.decode())
    assert "open from before you last signed in" in said
    assert "reload the page and try again" in said and "Go back" not in said
    assert ConnectivityCheck.objects.count() == 0


def test_a_refusal_without_the_cookie_reaches_the_card_too(lead):
    package = onboard().package
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)
    response = browser.post(f"/packages/{package.uuid}/check/", **HTMX)
    assert response.status_code == 403
    assert "did not send the cookie" in refusal(response.content.decode())


def test_a_check_refused_for_want_of_a_right_gives_the_card_its_reason(client, auditor):
    package = onboard().package
    client.force_login(auditor)
    response = client.post(f"/packages/{package.uuid}/check/", {"view": "cell"}, **HTMX)
    assert response.status_code == 403
    assert refusal(response.content.decode()) == "You may not check in Sandbox."


def test_a_refusal_without_a_sentence_gives_the_card_the_general_one(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/onboarding/accessgrant/add/")
    assert response.status_code == 403
    assert refusal(response.content.decode()) == "You do not have permission for this page."


def test_the_card_reads_the_refusal_that_the_pages_mark():
    # The other half of the contract, checked by reading: the script looks for data-refusal.
    from django.conf import settings

    script = (settings.BASE_DIR / "static" / "js" / "app.js").read_text()
    assert 'querySelector("[data-refusal]")' in script
    assert 'getAttribute("data-refusal")' in script
