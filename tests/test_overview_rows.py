"""The overview's cached rows (dashboard/overview_rows.py): a visit shows the current state and
its own CSRF token, `next` path and countdown, whether the rows were rendered for it or for an
earlier visit."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

import dashboard.overview_rows as overview_rows
from onboarding.models import Environment
from onboarding.services import checks as checks_service
from onboarding.services.checks import check_run
from tests.conftest import make_user, onboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def renders(monkeypatch) -> list:
    """Each rendering of the rows, as stored in the cache; a visit that adds none was served
    from the cache."""
    stored: list = []
    render = overview_rows._render

    def recording(**kwargs):
        key, rendered = render(**kwargs)
        stored.append(rendered)
        return key, rendered

    monkeypatch.setattr(overview_rows, "_render", recording)
    return stored


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

    monkeypatch.setattr(overview_rows, "timezone", clock(2))
    assert re.search(r'role="timer"[^>]*>9 h 59 min', page(client))
    monkeypatch.setattr(overview_rows, "timezone", clock(12))
    assert re.search(r'role="timer"[^>]*>expired<', page(client))
    assert len(renders) == 1


def test_rows_rendered_after_a_check_landed_are_filed_under_that_check(
        client, lead, sandbox_simulator, monkeypatch, renders):
    """A check that lands between the cheap read of the key and the rendering: the rows show
    it and are stored under the key that names it, never under the key of the state before
    (which a rollback could bring back)."""
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    version = onboard()
    read = overview_rows.package_stamps

    def read_then_check(**kwargs):
        stamps = read(**kwargs)
        monkeypatch.setattr(overview_rows, "package_stamps", read)  # once
        check_run(package=version.package, fetch_me=False)
        return stamps

    monkeypatch.setattr(overview_rows, "package_stamps", read_then_check)
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

    monkeypatch.setattr(overview_rows.cache, "get", down)
    monkeypatch.setattr(overview_rows.cache, "set", down)
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
    monkeypatch.setattr(overview_rows, "_revision", lambda: "release-1")
    page(client)
    page(client)
    monkeypatch.setattr(overview_rows, "_revision", lambda: "release-2")
    page(client)
    assert len(renders) == 2


def test_the_revision_follows_the_code_and_templates_and_debug_sees_edits(settings, tmp_path):
    for folder in overview_rows._SOURCES:
        (tmp_path / folder).mkdir()
    cells = tmp_path / "dashboard" / "cards.py"
    cells.write_text("LABEL = 'Passed'\n")
    template = tmp_path / "templates" / "_cell.html"
    template.write_text("<td>{{ label }}</td>\n")
    settings.BASE_DIR = tmp_path
    settings.DEBUG = False
    overview_rows._deployed_revision.cache_clear()
    try:
        first = overview_rows._revision()
        cells.write_text("LABEL = 'Verified'\n")
        assert overview_rows._hash_sources() != first
        assert overview_rows._revision() == first  # read once per process in production
        settings.DEBUG = True
        assert overview_rows._revision() != first  # under runserver, an edit shows at once
        edited = overview_rows._revision()
        template.write_text("<td>{{ label|upper }}</td>\n")
        assert overview_rows._revision() != edited
        (tmp_path / "dashboard" / "notes.txt").write_text("not code")
        assert overview_rows._hash_sources() == overview_rows._revision()
    finally:
        overview_rows._deployed_revision.cache_clear()


def test_a_cached_rendering_with_a_slot_this_code_does_not_fill_is_rendered_anew(
        client, lead, monkeypatch, renders):
    onboard()
    stale = overview_rows._Rendered(parts=["<tr>old</tr>", "tooltip", ""], any_cell=True)
    monkeypatch.setattr(overview_rows.cache, "get", lambda key: stale)
    client.force_login(lead)
    html = page(client)
    assert "Acme POS" in html and "<tr>old</tr>" not in html
    assert len(renders) == 1


def test_no_name_can_make_one_page_key_pose_as_another():
    # Joined as text with separators, both pages read "|1,u1,a|2,u2,b".
    one = [SimpleNamespace(pk=1, uuid="u1", name="a|2,u2,b")]
    two = [SimpleNamespace(pk=1, uuid="u1", name="a"), SimpleNamespace(pk=2, uuid="u2", name="b")]
    keys = {overview_rows._key(integrations=page, stamps=[], permissions=[])
            for page in (one, two)}
    assert len(keys) == 2
    # Nor can the values of packages' stamps run into each other ("|x|y" both, joined).
    assert (overview_rows._key(integrations=two, stamps=[("x|y",)], permissions=[])
            != overview_rows._key(integrations=two, stamps=[("x",), ("y",)], permissions=[]))


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
