"""The dashboard pages around the check: overview cards, Check now and Refresh (htmx and plain
form posts), the integration page and the check history, through the one access helper."""

from __future__ import annotations

import itertools
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.iqmetrix import Outcome
from onboarding.models import ConnectivityCheck, Environment, OnboardingPackage
from onboarding.services.checks import check_run
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard

HTMX = {"HTTP_HX_REQUEST": "true"}


def check_url(package: OnboardingPackage) -> str:
    return f"/packages/{package.uuid}/check/"


def assert_no_secret(content: bytes, *tokens: str | None) -> None:
    for value in (KNOWN_SECRET, KNOWN_PASSWORD, *tokens):
        if value:
            assert value.encode() not in content


def test_a_lead_checks_sandbox_and_the_card_is_swapped_in(client, lead, sandbox_simulator,
                                                           sandbox_version):
    client.force_login(lead)
    response = client.post(check_url(sandbox_version.package), {"next": "/"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<article")  # the card partial, not a whole page
    assert "<html" not in html
    assert 'id="card-' in html and "Passed: OK" in html
    assert "data-expires-at=" in html
    check = ConnectivityCheck.objects.get()
    assert check.outcome == Outcome.OK and check.requested_by == lead
    assert_no_secret(response.content, check.access_token, check.refresh_token)


def test_a_plain_form_post_redirects_back_with_a_message(client, lead, sandbox_simulator,
                                                         sandbox_version):
    client.force_login(lead)
    integration_page = f"/integrations/{sandbox_version.package.integration.uuid}/"
    response = client.post(check_url(sandbox_version.package), {"next": integration_page})
    assert response.status_code == 302
    assert response["Location"] == integration_page
    page = client.get(integration_page)
    assert b"iQmetrix issued a token for Sandbox" in page.content


def test_a_foreign_next_address_is_ignored(client, lead, sandbox_simulator, sandbox_version):
    client.force_login(lead)
    response = client.post(check_url(sandbox_version.package), {"next": "https://evil.test/"})
    assert response["Location"] == "/"


@pytest.mark.parametrize("target", ["overview", "dashboard:audit", "x", "a.b"])
def test_a_next_that_is_no_path_is_ignored(client, lead, sandbox_simulator, sandbox_version,
                                           target):
    # redirect() reads a bare word as a URL pattern name: "overview" was a 500 (no such
    # name) and "dashboard:audit" a jump to the audit log.
    client.force_login(lead)
    response = client.post(check_url(sandbox_version.package), {"next": target})
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_wrong_password_shows_its_plain_message(client, lead, sandbox_simulator, db):
    version = onboard(password="wrong-password-1")
    client.force_login(lead)
    response = client.post(check_url(version.package), **HTMX)
    assert b"Failed: Invalid user name or password" in response.content
    assert b"iQmetrix rejected the user name or password for Sandbox" in response.content
    assert b"wrong-password-1" not in response.content


def test_missing_credentials_say_what_to_do(client, lead, sandbox_simulator, db):
    version = onboard()
    type(version).objects.filter(pk=version.pk).update(password=None)
    client.force_login(lead)
    response = client.post(check_url(version.package), **HTMX)
    assert response.status_code == 200
    assert b"no password" in response.content
    assert ConnectivityCheck.objects.count() == 0


def test_an_outsider_gets_404(client, outsider, sandbox_simulator, sandbox_version):
    client.force_login(outsider)
    package = sandbox_version.package
    assert client.post(check_url(package)).status_code == 404
    assert client.get(f"/packages/{package.uuid}/checks/").status_code == 404
    assert client.get(f"/integrations/{package.integration.uuid}/").status_code == 404
    assert ConnectivityCheck.objects.count() == 0


def test_an_auditor_may_look_but_gets_403_on_check_and_refresh(client, auditor, sandbox_simulator,
                                                              sandbox_version):
    client.force_login(auditor)
    package = sandbox_version.package
    assert client.get("/").status_code == 200
    assert client.get(f"/packages/{package.uuid}/checks/").status_code == 200
    assert client.post(check_url(package), **HTMX).status_code == 403
    assert client.post(f"/packages/{package.uuid}/refresh/").status_code == 403
    assert ConnectivityCheck.objects.count() == 0


def test_check_actions_need_post(client, lead, sandbox_version):
    client.force_login(lead)
    assert client.get(check_url(sandbox_version.package)).status_code == 405


def test_buttons_show_only_when_allowed(client, lead, auditor, sandbox_simulator, db):
    onboard()
    onboard(environment=Environment.PRODUCTION)
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert html.count("Check now</button>") == 1  # Sandbox only: leads may not check Production
    assert "Production" in html  # leads may view Production
    client.force_login(auditor)
    assert "Check now</button>" not in client.get("/").content.decode()


def test_the_refresh_button_appears_when_a_refresh_token_is_held(client, lead, sandbox_simulator,
                                                                 sandbox_version, monkeypatch):
    from onboarding.services import checks

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    client.force_login(lead)
    assert b"Refresh token</button>" not in client.get("/").content
    check_run(package=sandbox_version.package)
    assert b"Refresh token</button>" in client.get("/").content
    response = client.post(f"/packages/{sandbox_version.package.uuid}/refresh/", **HTMX)
    assert response.status_code == 200
    assert ConnectivityCheck.objects.filter(kind="refresh", outcome="ok").count() == 1


def test_the_check_form_works_with_and_without_javascript(client, lead, sandbox_version):
    client.force_login(lead)
    html = client.get("/").content.decode()
    form = re.search(r'<form method="post" action="([^"]+)"\s+hx-post="([^"]+)">', html)
    assert form and form.group(1) == form.group(2) == check_url(sandbox_version.package)
    # The forms inherit where the answer goes and what shows progress from the list around them.
    rows = re.search(r'<div class="integration-rows"([^>]*)>', html)
    assert rows and 'hx-target="closest .env-cell"' in rows.group(1)
    assert 'hx-swap="outerHTML"' in rows.group(1)
    assert 'hx-indicator="closest .env-cell"' in rows.group(1)
    # ... and from their cell, which buttons wait meanwhile: all of the cell's.
    cell_id = f"card-{sandbox_version.package.integration.uuid}-sandbox"
    assert f'<div class="card-actions" hx-disabled-elt="#{cell_id} button">' in html
    assert html.index('class="integration-rows"') < form.start()
    assert "csrfmiddlewaretoken" in html
    assert "Checking…" in html


def test_no_template_syntax_shows_on_the_pages_with_cards(client, lead, sandbox_simulator,
                                                          sandbox_version):
    # Django's {# #} comments end at the line's end: a longer one is printed as text.
    client.force_login(lead)
    package = sandbox_version.package
    pages = [client.get("/"), client.get(f"/integrations/{package.integration.uuid}/"),
             client.post(check_url(package), **HTMX)]
    for response in pages:
        html = response.content.decode()
        assert not re.search(r"\{#|#\}|\{%|%\}", html), html


def test_the_countdown_carries_the_expiry_and_utc_is_on_hover(client, lead, sandbox_simulator,
                                                              sandbox_version):
    check = check_run(package=sandbox_version.package)
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert f'data-expires-at="{check.expires_at.isoformat()}"' in html
    assert re.search(r'<time datetime="[^"]+" title="[0-9-]+ [0-9:]+ UTC" data-local-time>', html)
    assert "<script>" not in html and "style=" not in html


def test_a_failing_package_says_since_when(client, lead, sandbox_version):
    OnboardingPackage.objects.update(failing_since="2026-01-02T03:04:05Z")
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert "Failing</strong> since" in html and "2026-01-02T03:04:05+00:00" in html


def test_no_secret_in_any_page(client, superuser, sandbox_simulator, sandbox_version):
    check = check_run(package=sandbox_version.package)
    client.force_login(superuser)
    package = sandbox_version.package
    for url in ("/", f"/integrations/{package.integration.uuid}/",
                f"/packages/{package.uuid}/checks/"):
        response = client.get(url)
        assert response.status_code == 200
        assert_no_secret(response.content, check.access_token, check.refresh_token)
    assert b"cl\xe2\x80\xa656" in client.get(f"/integrations/{package.integration.uuid}/").content


def test_the_integration_page_shows_both_environments_side_by_side(client, superuser, db):
    onboard(company_id=777)
    version = onboard(environment=Environment.PRODUCTION)
    client.force_login(superuser)
    html = client.get(f"/integrations/{version.package.integration.uuid}/").content.decode()
    assert html.index('id="env-sandbox"') < html.index('id="env-production"')
    assert "777" in html and "No checks yet." in html


def test_the_integration_page_headings_go_down_one_level_at_a_time(client, superuser,
                                                                   sandbox_version):
    onboard(environment=Environment.PRODUCTION)
    client.force_login(superuser)
    html = client.get(f"/integrations/{sandbox_version.package.integration.uuid}/").content
    levels = [int(level) for level in re.findall(rb"<h([1-6])\b", html)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert levels.count(2) == 2  # one per environment card
    jumps = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
    assert not jumps, levels


def test_the_history_is_newest_first_and_paginated(client, lead, sandbox_version):
    package = sandbox_version.package
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=1)
    ConnectivityCheck.objects.bulk_create(
        ConnectivityCheck(package=package, version=sandbox_version, sent_at=start
                          + timedelta(minutes=i), outcome=Outcome.TIMEOUT, message=f"msg-{i:02}")
        for i in range(30)
    )
    client.force_login(lead)
    first = client.get(f"/packages/{package.uuid}/checks/").content.decode()
    assert first.index("msg-29") < first.index("msg-28")
    assert "msg-04" not in first and "Page 1 of 2" in first
    second = client.get(f"/packages/{package.uuid}/checks/?page=2").content.decode()
    assert "msg-04" in second and "msg-05" not in second


def test_empty_states_say_what_to_do_next(client, superuser, lead, db):
    client.force_login(superuser)
    assert b"No integrations yet." in client.get("/").content
    onboard()
    html = client.get("/").content.decode()
    assert "No Production credentials yet." in html
    assert "Never checked." in html


def overview_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


@pytest.mark.parametrize("user_fixture", ["lead", "superuser"])
def test_the_overview_query_count_does_not_grow_with_integrations(client, request, db,
                                                                  user_fixture):
    client.force_login(request.getfixturevalue(user_fixture))
    version = onboard(name="Integration 00")
    ConnectivityCheck.objects.create(package=version.package, version=version,
                                     sent_at="2026-01-01T00:00:00Z", outcome=Outcome.OK,
                                     message="ok")
    overview_queries(client)  # warm up the session
    cache.clear()
    one = overview_queries(client), overview_queries(client)  # rows rendered, then cached
    for number in range(1, 20):
        version = onboard(name=f"Integration {number:02}")
        onboard(name=f"Integration {number:02}", environment=Environment.PRODUCTION)
        ConnectivityCheck.objects.create(package=version.package, version=version,
                                         sent_at="2026-01-01T00:00:00Z", outcome=Outcome.OK,
                                         message="ok")
    twenty = overview_queries(client), overview_queries(client)
    assert twenty == one
    rendered, cached = one
    assert cached < rendered <= 15


def test_cards_show_only_environments_the_user_may_view(client, db):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user(username="viewer", password="unused-in-tests-1234")
    viewer.user_permissions.add(Permission.objects.get(codename="view_sandbox"))
    onboard()
    onboard(environment=Environment.PRODUCTION)
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "-sandbox-title" in html and "-production-title" not in html
    assert "Check now</button>" not in html


def test_check_now_on_the_overview_swaps_in_a_compact_cell_and_on_the_integration_page_a_card(
        client, lead, sandbox_simulator, sandbox_version, monkeypatch):
    from onboarding.services import checks

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    client.force_login(lead)
    package = sandbox_version.package
    cell = client.post(check_url(package), {"view": "cell"}, **HTMX).content.decode()
    assert 'class="env-card env-cell state-verified"' in cell and "Passed: OK" in cell
    assert "Edit package" not in cell and 'name="view" value="cell"' in cell
    card = client.post(check_url(package), **HTMX).content.decode()
    assert "env-cell" not in card and "Edit package" in card


def test_check_now_on_the_integration_page_brings_its_recent_checks_along_out_of_band(
        client, lead, sandbox_simulator, sandbox_version):
    client.force_login(lead)
    package = sandbox_version.package
    page = client.get(f"/integrations/{package.integration.uuid}/").content.decode()
    table_id = f"card-{package.integration.uuid}-sandbox-recent"
    assert f'id="{table_id}"' in page and "No checks yet." in page

    html = client.post(check_url(package), {"next": "/"}, **HTMX).content.decode()
    assert html.lstrip().startswith("<article")  # the card is still what hx-target gets
    recent = re.search(rf'<div class="recent-checks" id="{table_id}" hx-swap-oob="true">'
                       r"(.*?)</div>\s*$", html, flags=re.DOTALL)
    assert recent is not None, html
    assert "<table" in recent[1] and "Passed: OK" in recent[1]
    assert "iQmetrix issued a token for Sandbox" in recent[1]
    # The overview's compact cell has no such table to update.
    cell = client.post(check_url(package), {"view": "cell"}, **HTMX).content.decode()
    assert "hx-swap-oob" not in cell


def test_the_overview_shows_25_integrations_a_page(client, lead, db):
    for number in range(26):
        onboard(name=f"Integration {number:02}")
    client.force_login(lead)
    first = client.get("/").content.decode()
    assert "Integration 24" in first and "Integration 25" not in first
    assert "Page 1 of 2" in first
    assert "Integration 25" in client.get("/?page=2").content.decode()


@pytest.mark.parametrize("number, shown", [
    ("abc", "Page 1 of 2"), ("0", "Page 2 of 2"), ("-1", "Page 2 of 2"), ("99", "Page 2 of 2"),
    ("2", "Page 2 of 2"), ("", "Page 1 of 2"),
])
def test_an_odd_page_number_shows_the_first_or_last_page(client, lead, outsider, superuser,
                                                         number, shown):
    """For someone who sees every integration (the page is counted and read compiled) as for
    someone whose grants name a few (the ORM's query)."""
    from datetime import timedelta

    from django.utils import timezone

    from onboarding.models import Role
    from onboarding.services.grants import grant_create

    for index in range(26):
        integration = onboard(name=f"Integration {index:02}").package.integration
        grant_create(user=outsider, role=Role.VIEW, integration=integration, reason="test",
                     valid_until=timezone.now() + timedelta(days=1), granted_by=superuser)
    for user in (lead, outsider):
        client.force_login(user)
        html = client.get(f"/?page={number}").content.decode()
        assert shown in html
        assert ("Integration 25" in html) == (shown == "Page 2 of 2")


def test_an_integration_scoped_grant_shows_that_integration_only_with_its_role(
        client, outsider, superuser, sandbox_simulator, settings, db):
    from datetime import timedelta

    from django.utils import timezone

    from onboarding.models import Role
    from onboarding.services.grants import grant_create

    settings.IQMETRIX_ACCOUNTS_URLS = {"production": sandbox_simulator.url}
    granted = onboard("Granted POS", environment=Environment.PRODUCTION).package.integration
    onboard("Other POS", environment=Environment.PRODUCTION)
    grant_create(user=outsider, role=Role.CHECK, valid_until=timezone.now() + timedelta(hours=1),
                 reason="launch", granted_by=superuser, integration=granted)
    client.force_login(outsider)
    html = client.get("/").content.decode()
    assert "Granted POS" in html and "Other POS" not in html
    assert html.count("Check now</button>") == 1


def test_the_overview_rows_escape_what_they_show(client, lead, sandbox_simulator):
    """The rows are rendered by Jinja2 and placed in the page as they are: its autoescaping is
    what keeps an integration name or an error message from becoming markup."""
    version = onboard('<img src=x onerror="alert(1)"> & Co', password="not-the-password")
    check_run(package=version.package)
    ConnectivityCheck.objects.update(message='<b id="injected">bold</b>')
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Co" in html
    assert "&lt;b id=&#34;injected&#34;&gt;bold&lt;/b&gt;" in html
    assert "<img src=x" not in html and '<b id="injected">' not in html


def sandbox_history_url(integration) -> str:
    return f"/integrations/{integration.uuid}/sandbox/history/"


def test_every_sandbox_version_is_listed_newest_first_without_secrets(client, lead,
                                                                       sandbox_version):
    integration = sandbox_version.package.integration
    client.force_login(lead)
    assert f'href="{sandbox_history_url(integration)}"' in client.get(
        f"/integrations/{integration.uuid}/").content.decode()
    for company_id in range(2, 5):
        onboard(company_id=company_id)
    with CaptureQueriesContext(connection) as few:
        response = client.get(sandbox_history_url(integration))
    assert response.status_code == 200
    html = response.content.decode()
    numbers = [int(n) for n in re.findall(r'<td role="cell" data-label="Version">v(\d+)', html)]
    assert numbers == [4, 3, 2, 1]
    assert '<td role="cell" data-label="Version">v4 (current)</td>' in html
    assert "(current)" not in html.split('<td role="cell" data-label="Version">v3')[1]
    assert "cl…56" in html and "client-abcdef123456" not in html  # masked
    assert_no_secret(response.content)
    for company_id in range(5, 30):
        onboard(company_id=company_id)
    with CaptureQueriesContext(connection) as many:
        html = client.get(sandbox_history_url(integration)).content.decode()
    assert html.count('<td role="cell" data-label="Version">v') == 29
    assert len(many) == len(few), "the page must not cost a query per version"


def test_each_sandbox_version_names_the_fields_it_changed_never_their_values(client, lead,
                                                                               sandbox_version):
    integration = sandbox_version.package.integration
    onboard(company_id=2)  # v2: the company ID
    onboard(company_id=2, client_secret="a-brand-new-secret-0001",
            password="a-brand-new-password-0001")  # v3: both secrets
    client.force_login(lead)
    html = client.get(sandbox_history_url(integration)).content.decode()
    changed = re.findall(r'<td role="cell" data-label="Changed">([^<]*)</td>', html)
    assert changed == ["Client secret, Password", "Company ID", "first version"]
    assert "a-brand-new-secret-0001" not in html and "a-brand-new-password-0001" not in html


def test_sandbox_versions_are_404_for_who_may_not_view_sandbox(client, outsider, superuser,
                                                                sandbox_version):
    from datetime import timedelta

    from django.utils import timezone

    from onboarding.models import Role
    from onboarding.services.grants import grant_create

    integration = sandbox_version.package.integration
    client.force_login(outsider)
    assert client.get(sandbox_history_url(integration)).status_code == 404
    # A Production grant on this integration shows the integration, not its Sandbox.
    grant_create(user=outsider, role=Role.VIEW, valid_until=timezone.now() + timedelta(hours=1),
                 reason="audit", granted_by=superuser, integration=integration)
    assert client.get(f"/integrations/{integration.uuid}/").status_code == 200
    assert client.get(sandbox_history_url(integration)).status_code == 404


@pytest.mark.parametrize(("path", "current"), [
    ("/", "Integrations"), ("/access/", "Production access"), ("/audit/", "Audit log"),
])
def test_the_main_navigation_marks_the_page_you_are_on(client, superuser, path, current):
    client.force_login(superuser)
    html = client.get(path).content.decode()
    nav = html[html.index('<nav class="site-nav"'):html.index("</nav>")]
    marked = re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', nav)
    assert marked == [current]


def test_an_empty_card_offers_each_reader_only_a_step_they_can_take(client, superuser, auditor,
                                                                     db):
    integration = onboard().package.integration
    page = f"/integrations/{integration.uuid}/"
    client.force_login(superuser)
    html = client.get(page).content.decode()
    assert "Add the Production onboarding package</a>" in html
    assert "manage.py onboard" in html
    # An auditor can neither open the form nor run the command: they are told who can.
    client.force_login(auditor)
    html = client.get(page).content.decode()
    assert "No Production credentials yet." in html
    assert "a release manager promotes the verified Sandbox package" in html
    assert "manage.py onboard" not in html and "/edit/" not in html


# --- commands shown on the pages are safe to paste into a shell --------------------------------

HOSTILE_NAME = 'Shop" $(touch /tmp/pwned) "'


def shown_commands(html: str) -> list[list[str]]:
    """Each `manage.py …` command a page shows, split into words as a shell would read it."""
    import html as html_module
    import shlex

    codes = [html_module.unescape(code) for code in re.findall(r"<code>(.*?)</code>", html, re.S)]
    return [shlex.split(code) for code in codes if "manage.py" in code]


def test_commands_shown_for_a_hostile_name_run_nothing_but_the_command(client, superuser, db):
    from onboarding.services.packages import integration_find

    package = onboard(HOSTILE_NAME).package  # Sandbox only: the Production card is empty
    integration = package.integration
    client.force_login(superuser)
    pages = [client.get(f"/integrations/{integration.uuid}/").content.decode(),  # onboard
             client.get(f"/packages/{package.uuid}/checks/").content.decode()]  # check_connectivity
    commands = [words for html in pages for words in shown_commands(html)]
    assert {words[words.index("manage.py") + 1] for words in commands} == {
        "onboard", "check_connectivity"}
    for words in commands:
        # Nothing of the name left loose for the shell, and one word naming this integration.
        assert not any("$(" in word or '"' in word for word in words), words
        named = words[words.index("manage.py") + 2]
        assert integration_find(name_or_slug=named) == integration
        assert words[words.index("manage.py") + 3] == "--environment"


def test_a_shell_word_stays_one_harmless_word_whatever_it_holds():
    import shlex

    from dashboard.templatetags.shell_words import shell_word

    # Slugs are [a-z0-9-] when the service makes them, but the admin may edit them: quote anyway.
    for value in ("acme-pos", HOSTILE_NAME, "a'b", "`id`", "; rm -rf ~", ""):
        assert shlex.split(f"manage.py onboard {shell_word(value)}") == [
            "manage.py", "onboard", value]
    assert shell_word("acme-pos") == "acme-pos"  # a plain slug reads as it is


# --- a refused refresh: the token Reveal offers keeps its countdown ----------------------------


def test_a_refused_refresh_keeps_the_live_tokens_countdown_and_says_what_was_refused(
        client, lead, sandbox_simulator, sandbox_version, monkeypatch):
    from onboarding.services import checks
    from onboarding.services.checks import check_live_token

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    package = sandbox_version.package
    passed = check_run(package=package)
    sandbox_simulator._by_refresh.clear()  # iQmetrix forgot its refresh tokens (a restart)
    client.force_login(lead)
    card = client.post(f"/packages/{package.uuid}/refresh/", **HTMX).content.decode()
    refused = ConnectivityCheck.objects.get(kind="refresh")
    assert refused.outcome == Outcome.INVALID_CREDENTIALS
    live = check_live_token(package=package)
    assert live == passed  # what the reveal page offers

    integration_page = client.get(f"/integrations/{package.integration.uuid}/").content.decode()
    overview = client.get("/").content.decode()
    history = client.get(f"/packages/{package.uuid}/checks/").content.decode()
    for html in (card, integration_page, overview):
        assert "state-verified" in html
        assert f'data-expires-at="{live.expires_at.isoformat()}"' in html
        assert "the token of the check that passed at" in html
    for html in (card, integration_page, overview, history):
        assert "Failed: Refresh token refused" in html
        assert "Invalid user name or password" not in html
    reveal = client.get(f"/packages/{package.uuid}/reveal/").content.decode()
    assert "valid until" in reveal and live.expires_at.isoformat() in reveal


def test_a_failed_check_after_a_pass_keeps_the_countdown_of_the_token_still_revealed(
        client, lead, sandbox_simulator, sandbox_version, monkeypatch):
    from onboarding.services import checks

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    package = sandbox_version.package
    passed = check_run(package=package)
    sandbox_simulator.rate_limit_next(1)
    assert not check_run(package=package).ok
    client.force_login(lead)
    for html in (client.get("/").content.decode(),
                 client.get(f"/integrations/{package.integration.uuid}/").content.decode()):
        assert "Failed: Rate limited" in html and "state-unverified" in html
        assert f'data-expires-at="{passed.expires_at.isoformat()}"' in html
        assert "the token of the check that passed at" in html


def test_the_countdown_follows_a_passing_refresh_and_names_no_earlier_check(
        client, lead, sandbox_simulator, sandbox_version, monkeypatch):
    from onboarding.services import checks
    from onboarding.services.checks import check_refresh

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    package = sandbox_version.package
    first = check_run(package=package)
    refreshed = check_refresh(package=package)
    assert refreshed.expires_at != first.expires_at
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert f'data-expires-at="{refreshed.expires_at.isoformat()}"' in html
    assert "Passed: OK" in html and "the token of the check that passed at" not in html


def test_a_refused_refresh_without_javascript_says_the_refresh_token_was_refused(
        client, lead, sandbox_simulator, sandbox_version, monkeypatch):
    from onboarding.services import checks

    monkeypatch.setattr(checks, "DEDUPE_SECONDS", 0.0)
    package = sandbox_version.package
    check_run(package=package)
    sandbox_simulator._by_refresh.clear()
    client.force_login(lead)
    response = client.post(f"/packages/{package.uuid}/refresh/", {"next": "/"}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "Refresh token refused." in shown[0], shown
    assert "Invalid user name or password" not in shown[0]


def test_an_empty_production_card_tells_a_lead_that_production_comes_by_promotion(
        client, lead, integration):
    client.force_login(lead)
    html = client.get(f"/integrations/{integration.uuid}/").content.decode()
    assert ("Production gets its configuration when a release manager promotes the verified "
            "Sandbox package") in html
    assert "An integration lead with Production access adds them" not in html


def test_the_integration_page_says_which_secrets_are_stored_without_showing_them(client, lead):
    # "Client secret, password: stored encrypted" was printed even for a package with neither.
    partial = onboard("Partial Co", client_secret=None, password=None).package.integration
    full = onboard().package.integration
    client.force_login(lead)
    html = client.get(f"/integrations/{partial.uuid}/").content.decode()
    assert "<dt>Client secret</dt><dd>not set</dd>" in html
    assert "<dt>Password</dt><dd>not set</dd>" in html
    assert "stored encrypted" not in html
    html = client.get(f"/integrations/{full.uuid}/").content.decode()
    assert "<dt>Client secret</dt><dd>set (stored encrypted, never shown here)</dd>" in html
    assert "<dt>Password</dt><dd>set (stored encrypted, never shown here)</dd>" in html
    assert KNOWN_SECRET not in html and KNOWN_PASSWORD not in html


def test_a_user_without_any_role_is_told_so_not_that_there_are_no_integrations(client,
                                                                                outsider,
                                                                                auditor):
    client.force_login(auditor)  # may view both environments; there is nothing to view yet
    html = client.get("/").content.decode()
    assert "No integrations yet." in html and "Ask an administrator to add an integration." in html
    assert "no access" not in html
    onboard()
    client.force_login(outsider)
    html = client.get("/").content.decode()
    assert "You have no access to any integration yet." in html
    assert "No integrations yet." not in html


def test_the_integration_page_says_when_a_secret_cannot_be_decrypted(client, lead, settings,
                                                                      sandbox_version):
    # Read from the ciphertext alone it said "set", beside a client ID the same page (and the
    # admin) call undecryptable.
    from onboarding.crypto import generate_key_entry

    settings.FIELD_ENCRYPTION_KEYS = generate_key_entry("other")
    client.force_login(lead)
    html = client.get(f"/integrations/{sandbox_version.package.integration.uuid}/"
                      ).content.decode()
    assert ("<dt>Client secret</dt><dd>cannot be decrypted with the configured keys</dd>"
            in html)
    assert "<dt>Password</dt><dd>cannot be decrypted with the configured keys</dd>" in html
