"""A form sent after the session ended: back to its page after signing in, and told it was lost.

A normal (non-htmx) POST whose session had ended went to /accounts/login/?expired=1 with no
`next`, so after signing in the user landed on the overview and what they had typed was gone
without a word. Now `next` is the page the form was on (its Referer, when that is a path on this
host), and the sign-in page says the form was not saved. Nothing from the body is in the URL.
"""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from dashboard.middleware import AUTH_STARTED_KEY

LOGIN = "/accounts/login/"
TYPED_SECRET = "typed-Secret-9f8e7d"


def _signed_in_then_idle(client, user) -> None:
    client.force_login(user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))


def _edit_urls(integration) -> tuple[str, str]:
    page = f"/integrations/{integration.uuid}/packages/sandbox/edit/"
    return page, page


def _query(location: str) -> dict[str, list[str]]:
    parts = urlsplit(location)
    assert parts.path == LOGIN
    return parse_qs(parts.query)


@pytest.mark.parametrize("form", ["package edit", "new integration", "grant", "revoke",
                                  "reveal"])
def test_a_form_posted_after_the_session_ended_returns_to_its_page(client, lead, integration,
                                                                    form):
    package = integration.packages.get(environment="sandbox")
    page, action = {
        "package edit": _edit_urls(integration),
        "new integration": ("/integrations/new/", "/integrations/new/check/"),
        "grant": ("/access/grants/new/", "/access/grants/new/"),
        "revoke": ("/access/?page=2", f"/access/grants/{package.uuid}/revoke/"),
        "reveal": (f"/packages/{package.uuid}/reveal/",
                   f"/packages/{package.uuid}/reveal/secret/"),
    }[form]
    _signed_in_then_idle(client, lead)
    response = client.post(action, {"client_secret": TYPED_SECRET, "confirm_password": "x",
                                    "reason": TYPED_SECRET},
                           HTTP_REFERER=f"http://testserver{page}")
    assert response.status_code == 302
    assert _query(response["Location"]) == {"next": [page], "expired": ["1"], "unsaved": ["1"]}
    assert TYPED_SECRET not in response["Location"]


def test_the_sign_in_page_says_the_form_was_not_saved(client, lead, integration):
    page, action = _edit_urls(integration)
    _signed_in_then_idle(client, lead)
    location = client.post(action, {"client_secret": TYPED_SECRET},
                           HTTP_REFERER=f"http://testserver{page}")["Location"]
    html = client.get(location).content.decode()
    assert "Your session ended, so the form you sent was not saved." in html
    assert "fill the form in and send it again" in html
    assert TYPED_SECRET not in html
    # Signing in goes back to the form's page.
    signed_in = client.post(location, {"username": "lead", "password": "unused-in-tests-1234",
                                       "next": page})
    assert signed_in["Location"] == page


def test_an_ended_session_without_a_form_keeps_the_plain_words(client, lead):
    _signed_in_then_idle(client, lead)
    location = client.get("/audit/")["Location"]
    assert "unsaved" not in location
    html = client.get(location).content.decode()
    assert "Your session ended. Please sign in again." in html
    assert "not saved" not in html


@pytest.mark.parametrize("referer", ["https://evil.test/integrations/", "//evil.test/x/",
                                     "http://testserver", "javascript:alert(1)", ""])
def test_a_referer_that_is_no_path_on_this_host_is_not_followed(client, lead, integration,
                                                                referer):
    _, action = _edit_urls(integration)
    _signed_in_then_idle(client, lead)
    extra = {"HTTP_REFERER": referer} if referer else {}
    response = client.post(action, {"client_secret": TYPED_SECRET}, **extra)
    assert _query(response["Location"]) == {"expired": ["1"], "unsaved": ["1"]}


def test_a_form_posted_after_the_absolute_lifetime_returns_to_its_page(client, lead,
                                                                       integration):
    page, action = _edit_urls(integration)
    client.force_login(lead)
    session = client.session
    session[AUTH_STARTED_KEY] = time.time() - settings.SESSION_MAX_AGE.total_seconds() - 1
    session.save()
    response = client.post(action, {"client_secret": TYPED_SECRET},
                           HTTP_REFERER=f"http://testserver{page}")
    assert _query(response["Location"]) == {"next": [page], "expired": ["1"], "unsaved": ["1"]}


@pytest.mark.parametrize("shown_at", ["/integrations/new/check/", "edit/check/",
                                      "reveal/secret/", "reveal/token/", "reveal/postman/"])
def test_a_form_last_shown_at_a_post_only_address_returns_to_its_page(client, lead,
                                                                        integration, shown_at):
    # A refused "Save and check" or reveal shows its form again at the address it was posted
    # to, which answers only POST: returning there after signing in was a blank 405 page.
    package = integration.packages.get(environment="sandbox")
    edit = f"/integrations/{integration.uuid}/packages/sandbox/edit/"
    referer, page = {
        "/integrations/new/check/": ("/integrations/new/check/", "/integrations/new/"),
        "edit/check/": (f"{edit}check/", edit),
        "reveal/secret/": (f"/packages/{package.uuid}/reveal/secret/",
                           f"/packages/{package.uuid}/reveal/"),
        "reveal/token/": (f"/packages/{package.uuid}/reveal/token/",
                          f"/packages/{package.uuid}/reveal/"),
        "reveal/postman/": (f"/packages/{package.uuid}/reveal/postman/",
                            f"/packages/{package.uuid}/reveal/"),
    }[shown_at]
    _signed_in_then_idle(client, lead)
    response = client.post(referer, {"confirm_password": "x"},
                           HTTP_REFERER=f"http://testserver{referer}")
    assert _query(response["Location"])["next"] == [page]
    client.force_login(lead)
    assert client.get(page).status_code == 200


def test_every_post_only_address_maps_to_a_page_that_answers_get(client, superuser,
                                                                 integration):
    # A revoke's Referer once made form_page reverse the access page with the grant's uuid:
    # NoReverseMatch, a 500 for anyone who could set the header, signed in or not.
    from django.urls import reverse

    from dashboard.navigation import _FORM_PAGE_OF, form_page

    package = integration.packages.get(environment="sandbox")
    edit = {"uuid": integration.uuid, "environment": "sandbox"}
    arguments = {
        "dashboard:integration_new_check": None, "dashboard:package_edit_check": edit,
        "dashboard:reveal_secret": {"uuid": package.uuid},
        "dashboard:reveal_token": {"uuid": package.uuid},
        "dashboard:postman_export": {"uuid": package.uuid},
        "dashboard:production_rollback": {"uuid": integration.uuid},
        "dashboard:grant_end": {"uuid": package.uuid},  # any uuid: the page names no grant
        "dashboard:check_run": {"uuid": package.uuid},
        "dashboard:check_refresh": {"uuid": package.uuid},
    }
    assert set(arguments) == set(_FORM_PAGE_OF)
    client.force_login(superuser)
    for name, kwargs in arguments.items():
        page = form_page(reverse(name, kwargs=kwargs))
        assert page and client.get(page).status_code == 200, (name, page)


def test_a_revoke_referer_from_a_signed_out_browser_is_no_500(client, lead):
    response = client.post("/access/grants/00000000-0000-0000-0000-000000000001/revoke/", {},
                           HTTP_REFERER="http://testserver/access/grants/"
                                        "00000000-0000-0000-0000-000000000001/revoke/")
    assert response.status_code == 302
    assert _query(response["Location"])["next"] == ["/access/"]
