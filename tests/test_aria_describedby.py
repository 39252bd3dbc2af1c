"""Every id an input's aria-describedby names exists on the page.

Django adds aria-describedby="id_<field>_helptext" (and "…_error") to a field's widget on its
own; a template that prints the help text or the errors without those ids leaves a dangling
reference, and a screen reader announces nothing for the field. The walk reuses the URL walker
(so a page added later is covered), as a superuser who may open every page, and then submits
each form with a mistake so the error ids are checked too.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from tests.test_url_walk import every_page, world  # noqa: F401  (world is a fixture)


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: list[tuple[str, str]] = []  # (the element's own id or name, ref)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        for ref in (found.get("aria-describedby") or "").split():
            self.references.append((f"<{tag} {found.get('id') or found.get('name') or ''}>", ref))

    handle_startendtag = handle_starttag


def dangling(html: str) -> list[str]:
    page = _Ids()
    page.feed(html)
    return [f"{who} → #{ref}" for who, ref in page.references if ref not in page.ids]


def check(response, where: str, problems: list[str]) -> None:
    if "html" not in response.get("Content-Type", ""):
        return
    problems += [f"{where}: {item}" for item in dangling(response.content.decode())]


def test_the_checker_finds_a_dangling_reference():
    assert dangling('<input id="a" aria-describedby="a_helptext">') == ["<input a> → #a_helptext"]
    assert dangling('<input id="a" aria-describedby="h"><div id="h"></div>') == []


def test_every_page_refers_only_to_ids_it_has(world, superuser):  # noqa: F811
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    problems: list[str] = []
    seen = 0
    for _route, url, response in every_page(client, world):
        if response.status_code == 200:
            seen += 1
            check(response, f"GET {url}", problems)
    assert seen > 20
    assert not problems, "\n".join(problems)


def test_forms_with_errors_refer_only_to_ids_they_have(world, superuser):  # noqa: F811
    """Each form sent with a mistake, so its fields carry their …_error references."""
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    sandbox, production = world["packages"]
    integration = sandbox.integration
    posts = {
        reverse("dashboard:integration_new"): {"name": "", "environment": "sandbox",
                                                "company_id": "not a number"},
        reverse("dashboard:package_edit", kwargs={"uuid": integration.uuid,
                                                  "environment": "production"}):
            {"company_id": "not a number", "base_version": "1"},
        reverse("dashboard:grant_new"): {"user": "nobody", "valid_until": "soon"},
        reverse("password_change"): {"old_password": "wrong", "new_password1": "short",
                                     "new_password2": "other"},
        reverse("dashboard:confirm_password"): {"password": "wrong"},
        reverse("dashboard:reveal_secret", kwargs={"uuid": production.uuid}):
            {"field": "client_secret", "confirm_password": "wrong"},
    }
    problems: list[str] = []
    for url, data in posts.items():
        response = client.post(url, data)
        assert response.status_code in (200, 400, 403), f"POST {url}: {response.status_code}"
        check(response, f"POST {url}", problems)
    audit = client.get(reverse("dashboard:audit"), {"since": "2026-02-01", "until": "2026-01-01"})
    assert b"id_until_error" in audit.content or b"The end date" in audit.content
    check(audit, "GET /audit/ with an end before its start", problems)
    bad_date = client.get(reverse("dashboard:audit"), {"since": "not a day"})
    check(bad_date, "GET /audit/ with a malformed day", problems)
    anonymous = Client(raise_request_exception=False)
    check(anonymous.post(reverse("login"), {"username": "", "password": ""}),
          "POST /accounts/login/ empty", problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("url_name", ["dashboard:audit"])
def test_the_audit_filters_errors_are_announced(url_name, superuser):
    client = Client()
    client.force_login(superuser)
    response = client.get(reverse(url_name), {"since": "2026-02-01", "until": "2026-01-01"})
    html = response.content.decode()
    assert 'id="id_until_error"' in html
    start = html.index('id="id_until_error"')
    tag = html[html.rindex("<", 0, start):html.index(">", start)]
    assert 'role="alert"' in tag
