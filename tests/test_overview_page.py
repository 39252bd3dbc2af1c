"""The overview's cached rows and page (dashboard/overview_page.py): a visit shows the current
state and its own CSRF token, `next` path, countdowns, flash messages and page links, whether the
page was rendered for it or for an earlier visit."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

import dashboard.overview_page as overview_page
from onboarding.models import Environment
from onboarding.services import checks as checks_service
from onboarding.services.checks import check_run
from tests.conftest import make_user, onboard

pytestmark = pytest.mark.django_db


def recorded(monkeypatch, name: str) -> list:
    """Each rendering made by `overview_page.<name>`, as stored in the cache."""
    stored: list = []
    render = getattr(overview_page, name)

    def recording(**kwargs):
        made = render(**kwargs)
        stored.append(made[1] if isinstance(made, tuple) else made)  # _render: (key, rows)
        return made

    monkeypatch.setattr(overview_page, name, recording)
    return stored


@pytest.fixture
def renders(monkeypatch) -> list:
    """Each rendering of the rows; a visit that adds none took them from the cache."""
    return recorded(monkeypatch, "_render")


@pytest.fixture
def page_renders(monkeypatch) -> list:
    """Each rendering of the page around the rows; a visit that adds none was served whole
    from the cache."""
    return recorded(monkeypatch, "_render_page")


def page(client: Client, path: str = "/") -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def cell(html: str, environment: str = "sandbox") -> str:
    found = re.search(rf'<article class="env-card env-cell[^"]*" id="card-[^"]+-{environment}".*?'
                      r"</article>", html, flags=re.S)
    assert found, f"no {environment} cell"
    return found.group(0)


def test_a_second_visit_takes_the_rows_from_the_cache(client, lead, renders):
    onboard()
    client.force_login(lead)
    first = page(client)
    second = page(client)
    assert len(renders) == 1
    token = r'(name="csrfmiddlewaretoken" value=)"[^"]+"'  # masked anew for every visit
    assert re.sub(token, "", cell(second)) == re.sub(token, "", cell(first))


def test_a_check_made_after_the_rows_were_cached_shows_at_once(
        client, lead, sandbox_simulator, monkeypatch, renders):
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    version = onboard()
    client.force_login(lead)
    assert "Never checked." in cell(page(client))

    check_run(package=version.package, fetch_me=False)
    shown = cell(page(client))
    assert "Passed:" in shown and "state-verified" in shown

    onboard(password="no-longer-the-password")  # a new version, which fails its check
    shown = cell(page(client))
    assert "v2" in shown and "(of an earlier version)" in shown and "state-unverified" in shown
    check_run(package=version.package, fetch_me=False)
    shown = cell(page(client))
    assert "Failed:" in shown and "Failing" in shown
    assert len(renders) == 4


def test_a_renamed_integration_shows_its_new_name(client, lead):
    integration = onboard().package.integration
    client.force_login(lead)
    assert "Acme POS" in page(client)
    integration.name = "Acme Point of Sale"
    integration.save()
    assert "Acme Point of Sale" in page(client)


def test_users_with_other_rights_get_their_own_rows(client, lead, auditor, renders):
    onboard()
    onboard(environment=Environment.PRODUCTION)
    # Both see both environments; only the lead may check Sandbox.
    client.force_login(lead)
    assert "Check now</button>" in cell(page(client))
    client.force_login(auditor)
    assert "Check now</button>" not in page(client)
    assert len(renders) == 2

    # Rights taken away take effect on the next visit, not when the cache lets go.
    lead.groups.clear()
    lead.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_sandbox", "view_production"]))
    client.force_login(lead)
    assert "Check now</button>" not in page(client)


def test_each_visit_gets_its_own_csrf_token_and_the_cache_holds_none(client, lead, renders,
                                                                     sandbox_simulator):
    version = onboard()
    other_lead = make_user("other-lead", "Integration leads")
    first = Client(enforce_csrf_checks=True)
    first.force_login(lead)
    page(first)
    second = Client(enforce_csrf_checks=True)
    second.force_login(other_lead)
    html = page(second)
    assert len(renders) == 1  # the second lead's rows came from the first lead's rendering

    token = re.search(r'<form method="post" action="([^"]+)".*?name="csrfmiddlewaretoken" '
                      r'value="([^"]+)"', cell(html), flags=re.S)
    assert token and token.group(1).endswith(f"/packages/{version.package.uuid}/check/")
    response = second.post(token.group(1), {"csrfmiddlewaretoken": token.group(2), "next": "/"})
    assert response.status_code == 302  # CSRF accepted: the token is the second lead's own

    stored = "".join(renders[0].parts[::2])  # the rendering without its slots
    assert 'name="csrfmiddlewaretoken" value=""' in stored
    assert re.search(r'name="csrfmiddlewaretoken" value="[^"]', stored) is None


def test_forms_return_to_the_page_of_each_visit(client, lead):
    onboard()
    client.force_login(lead)
    assert 'name="next" value="/"' in cell(page(client))
    shown = cell(page(client, "/?page=1&sort=name"))
    assert 'name="next" value="/?page=1&amp;sort=name"' in shown


def test_the_countdown_is_worked_out_at_each_visit(client, lead, sandbox_simulator, monkeypatch,
                                                   renders):
    check_run(package=onboard().package, fetch_me=False)
    client.force_login(lead)
    assert re.search(r'role="timer"[^>]*>11 h 59 min', page(client))

    def clock(hours: int) -> SimpleNamespace:  # the rows' clock only: the session keeps its own
        later = timezone.now() + timedelta(hours=hours)
        return SimpleNamespace(now=lambda: later,
                               get_current_timezone=timezone.get_current_timezone)

    monkeypatch.setattr(overview_page, "timezone", clock(2))
    assert re.search(r'role="timer"[^>]*>9 h 59 min', page(client))
    monkeypatch.setattr(overview_page, "timezone", clock(12))
    assert re.search(r'role="timer"[^>]*>expired<', page(client))
    assert len(renders) == 1


def test_rows_rendered_after_a_check_landed_are_filed_under_that_check(
        client, lead, sandbox_simulator, monkeypatch, renders):
    """A check that lands between the cheap read of the key and the rendering: the rows show
    it and are stored under the key that names it, never under the key of the state before
    (which a rollback could bring back)."""
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    version = onboard()
    read = overview_page.package_stamps

    def read_then_check(**kwargs):
        stamps = read(**kwargs)
        monkeypatch.setattr(overview_page, "package_stamps", read)  # once
        check_run(package=version.package, fetch_me=False)
        return stamps

    monkeypatch.setattr(overview_page, "package_stamps", read_then_check)
    client.force_login(lead)
    assert "Passed:" in cell(page(client))
    assert "Passed:" in cell(page(client))
    assert len(renders) == 1  # the second visit's key is the one the rows were filed under


def test_a_cache_that_cannot_be_reached_costs_a_rendering_not_the_page(client, lead,
                                                                        monkeypatch, renders,
                                                                        caplog):
    onboard()

    def down(*args, **kwargs):
        raise ConnectionError("cache server down")

    monkeypatch.setattr(overview_page.cache, "get", down)
    monkeypatch.setattr(overview_page.cache, "set", down)
    client.force_login(lead)
    assert "Acme POS" in page(client)
    assert "Acme POS" in page(client)
    assert len(renders) == 2
    assert "the cache could not be read (ConnectionError)" in caplog.text


def test_a_deployment_with_other_code_renders_its_own_rows(client, lead, monkeypatch, renders):
    """A cache shared between deployments (CACHE_URL) never serves rows that older code or
    templates rendered."""
    onboard()
    client.force_login(lead)
    monkeypatch.setattr(overview_page, "_revision", lambda: "release-1")
    page(client)
    page(client)
    monkeypatch.setattr(overview_page, "_revision", lambda: "release-2")
    page(client)
    assert len(renders) == 2


@pytest.fixture
def source_tree(settings, tmp_path):
    """A project of its own to hash, in production (DEBUG off), its revision not yet read; the
    path of its dashboard/cards.py."""
    for folder in overview_page._SOURCES:
        (tmp_path / folder).mkdir()
    cells = tmp_path / "dashboard" / "cards.py"
    cells.write_text("LABEL = 'Passed'\n")
    settings.BASE_DIR = tmp_path
    settings.DEBUG = False
    overview_page.deployed_revision.cache_clear()
    yield cells
    overview_page.deployed_revision.cache_clear()


def test_the_revision_follows_code_templates_and_static_files_and_debug_sees_edits(
        settings, source_tree):
    root = source_tree.parent.parent
    template = root / "templates" / "_cell.html"
    template.write_text("<td>{{ label }}</td>\n")
    first = overview_page._revision()
    source_tree.write_text("LABEL = 'Verified'\n")
    assert overview_page._hash_sources() != first
    assert overview_page._revision() == first  # read once per process in production
    settings.DEBUG = True
    assert overview_page._revision() != first  # under runserver, an edit shows at once
    edited = overview_page._revision()
    template.write_text("<td>{{ label|upper }}</td>\n")
    assert overview_page._revision() != edited
    (root / "dashboard" / "notes.txt").write_text("not code")
    assert overview_page._hash_sources() == overview_page._revision()
    # A stylesheet changes the hashed name the layout links it by.
    without = overview_page._revision()
    (root / "static" / "css").mkdir(parents=True)
    (root / "static" / "css" / "app.css").write_text("body { color: black }\n")
    assert overview_page._revision() != without


def test_the_revision_is_the_one_of_the_code_the_process_started_with(source_tree):
    """Code copied in while a worker still runs the old code (before the restart) must not give
    that worker the new revision: its pages would be filed where restarted workers look."""
    from django.apps import apps

    apps.get_app_config("dashboard").ready()  # the process starts
    started = overview_page._hash_sources()
    source_tree.write_text("LABEL = 'Verified'\n")  # the new release lands on disk
    assert overview_page._revision() == started  # the first visit comes after


def test_a_cached_rendering_with_a_slot_this_code_does_not_fill_is_rendered_anew(
        client, lead, monkeypatch, renders):
    onboard()
    stale = overview_page._Rendered(parts=["<tr>old</tr>", "tooltip", ""],
                                    slots=frozenset({"tooltip"}), any_cell=True)
    monkeypatch.setattr(overview_page.cache, "get", lambda key: stale)
    client.force_login(lead)
    html = page(client)
    assert "Acme POS" in html and "<tr>old</tr>" not in html
    assert len(renders) == 1


def test_no_name_can_make_one_page_key_pose_as_another():
    # Joined as text with separators, both pages read "|1,u1,a|2,u2,b".
    one = [SimpleNamespace(pk=1, uuid="u1", name="a|2,u2,b")]
    two = [SimpleNamespace(pk=1, uuid="u1", name="a"), SimpleNamespace(pk=2, uuid="u2", name="b")]
    keys = {overview_page._key(integrations=page, stamps=[], permissions=((), ()))
            for page in (one, two)}
    assert len(keys) == 2
    # Nor can the values of packages' stamps run into each other ("|x|y" both, joined).
    assert (overview_page._key(integrations=two, stamps=[("x|y",)], permissions=((), ()))
            != overview_page._key(integrations=two, stamps=[("x",), ("y",)], permissions=((), ())))


def test_a_pass_recorded_after_a_newer_check_moves_the_cached_countdown(
        client, lead, sandbox_simulator, monkeypatch, renders):
    """Scheduled checks take no claim of the package, so a dashboard refresh sent just before a
    scheduled exchange can be recorded just after it. The refresh's token is then the live one
    while the newest check, the newest exchange, `refresh_held` and `failing_since` stay as
    they were: the cached rows must still move to the refresh's countdown."""
    from datetime import datetime

    from onboarding.models import ConnectivityCheck
    from onboarding.services.checks import check_live_token, check_refresh

    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    package = onboard().package
    first = check_run(package=package, fetch_me=False)
    sandbox_simulator.rate_limit_next(1)
    scheduled = check_run(package=package, fetch_me=False)
    assert not scheduled.ok
    client.force_login(lead)

    def countdown() -> datetime:
        found = re.search(r'data-expires-at="([^"]+)"', cell(page(client)))
        assert found, "no countdown"
        return datetime.fromisoformat(found.group(1))

    assert countdown() == first.expires_at
    refreshed = check_refresh(package=package)
    # As if sent before the scheduled exchange (the race), which stays the newest check.
    ConnectivityCheck.objects.filter(pk=refreshed.pk).update(
        sent_at=scheduled.sent_at - timedelta(milliseconds=1))
    assert check_live_token(package=package) == refreshed
    assert countdown() == refreshed.expires_at
    assert len(renders) == 2


def test_a_user_who_sees_an_integration_through_a_grant_gets_its_changes(
        client, outsider, superuser, sandbox_simulator, settings, monkeypatch, renders):
    """Rights that differ per integration (a grant naming one) are in the key cell by cell: the
    granted cell's package stamps count, and another user's rendering is never reused."""
    from onboarding.models import Role
    from onboarding.services.grants import grant_create

    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                       "production": sandbox_simulator.url}
    package = onboard(environment=Environment.PRODUCTION).package
    onboard("Other POS", environment=Environment.PRODUCTION)
    grant_create(user=outsider, role=Role.CHECK, integration=package.integration,
                 valid_until=timezone.now() + timedelta(days=1), reason="on call",
                 granted_by=superuser)
    client.force_login(outsider)
    html = page(client)
    assert "Acme POS" in html and "Other POS" not in html
    assert "Never checked." in cell(html, "production")

    check_run(package=package, fetch_me=False)
    assert "Passed:" in cell(page(client), "production")
    page(client)  # nothing changed: from the cache, its key being the one the rows were filed under
    assert len(renders) == 2


def test_a_second_visit_takes_the_whole_page_from_the_cache(client, lead, renders,
                                                             page_renders):
    onboard()
    client.force_login(lead)
    first, second = page(client), page(client)
    assert len(renders) == len(page_renders) == 1
    token = r'(name="csrfmiddlewaretoken" value=)"[^"]+"'
    assert re.sub(token, "", second) == re.sub(token, "", first)
    assert "Acme POS" in second and ">lead<" in second  # the rows and the header


def test_every_form_of_a_visit_carries_the_same_csrf_token(client, lead):
    onboard()
    onboard(environment=Environment.PRODUCTION)
    client.force_login(lead)
    page(client)
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page(client))
    assert len(tokens) >= 2 and len(set(tokens)) == 1  # the Check now forms and Sign out


def test_users_with_the_same_rights_share_the_rows_but_each_sees_their_own_name(
        client, lead, renders, page_renders):
    onboard()
    other = make_user("second-lead", "Integration leads")
    client.force_login(lead)
    assert ">lead<" in page(client)
    client.force_login(other)
    html = page(client)
    assert ">second-lead<" in html and ">lead<" not in html
    assert len(renders) == 1 and len(page_renders) == 2


def test_a_renamed_user_sees_the_new_name_at_the_next_visit(client, lead):
    onboard()
    client.force_login(lead)
    assert ">lead<" in page(client)
    lead.username = "lead-renamed"
    lead.save()
    assert ">lead-renamed<" in page(client)


def test_the_header_follows_the_users_rights_at_the_next_visit(client, lead, renders,
                                                               page_renders):
    onboard()
    client.force_login(lead)
    html = page(client)
    assert 'href="/audit/"' not in html and 'href="/admin/"' not in html
    lead.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert 'href="/audit/"' in page(client)
    lead.is_staff = True
    lead.save()
    assert 'href="/admin/"' in page(client)
    assert len(renders) == 1 and len(page_renders) == 3  # the rows were the same throughout


def test_a_flash_message_shows_once_on_a_cached_page(client, lead, page_renders):
    onboard()
    lead.set_password("old-Pw-Hn4sRt7YuB2eGc6")
    lead.save()
    client.force_login(lead)
    page(client)
    new = "new-Pw-Kq8wZt3LmX5vRd2"
    response = client.post("/accounts/password/", {
        "old_password": "old-Pw-Hn4sRt7YuB2eGc6", "new_password1": new, "new_password2": new})
    assert response.status_code == 302 and response.url == "/"
    assert "Your password was changed." in page(client)
    assert "Your password was changed." not in page(client)
    assert len(page_renders) == 1  # the message was filled into the cached page


def test_page_links_keep_each_visits_other_parameters(client, lead, settings, monkeypatch,
                                                      page_renders):
    monkeypatch.setattr(overview_page, "INTEGRATIONS_PER_PAGE", 1)
    for name in ("Alpha", "Beta", "Gamma"):
        onboard(name)
    client.force_login(lead)
    html = page(client, "/?page=2&sort=name")
    assert "Beta" in html and "Page 2 of 3" in html
    assert 'href="?page=1&amp;sort=name"' in html and 'href="?page=3&amp;sort=name"' in html
    html = page(client, "/?page=2&view=compact")
    assert 'href="?page=1&amp;view=compact"' in html and "sort=name" not in html
    assert len(page_renders) == 1  # the same page, with each visit's own links


def test_no_secret_goes_into_the_cache(client, lead, sandbox_simulator, renders, page_renders):
    """What the cache keeps of the overview (the rows and the page, which are also what a
    shared CACHE_URL server holds) carries no credential and no token, whatever was checked."""
    from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET

    check = check_run(package=onboard().package, fetch_me=False)
    assert check.ok and check.access_token and check.refresh_token
    client.force_login(lead)
    page(client)
    stored = ["".join(rendered.parts) for rendered in [*renders, *page_renders]]
    assert len(stored) == 2
    for secret in (KNOWN_SECRET, KNOWN_PASSWORD, check.access_token, check.refresh_token,
                   client.session.session_key):
        assert all(secret not in text for text in stored)
