"""One access decision: time-bound grants (service, commands, pages), step-up confirmation,
Production admin edits, and the pages for auditors."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from onboarding.models import AccessGrant, AuditEvent, Environment, Integration, Role
from onboarding.services.access import active_grants, can, roles
from onboarding.services.audit import AuditAction, audit_record, audit_verify
from onboarding.services.grants import GrantError, grant_create, grant_revoke
from tests.conftest import make_user, onboard
from tests.explain import index_scans, last_query, postgres_only

PASSWORD = "unused-in-tests-1234"
PROD = Environment.PRODUCTION


def later(**kwargs) -> timezone.datetime:
    return timezone.now() + timedelta(**kwargs)


def fresh(user):
    """The same account without the per-request caches (grants, permissions)."""
    return type(user).objects.get(pk=user.pk)


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


# --- Grants ---------------------------------------------------------------------------------

def test_an_active_grant_gives_its_role_and_view(outsider, superuser, integration):
    grant_create(user=outsider, role=Role.PROMOTE, valid_until=later(hours=1), reason="launch",
                 granted_by=superuser)
    assert roles(user=fresh(outsider), environment=PROD) == {"promote", "view"}
    assert not can(user=fresh(outsider), action=Role.REVEAL, environment=PROD)
    assert not can(user=fresh(outsider), action=Role.PROMOTE, environment=Environment.SANDBOX)


def test_a_grant_on_one_integration_gives_nothing_on_the_others(outsider, superuser,
                                                                 integration):
    other = onboard("Other Shop").package.integration
    grant_create(user=outsider, role=Role.CHECK, valid_until=later(hours=1), reason="debug",
                 granted_by=superuser, integration=integration)
    user = fresh(outsider)
    assert can(user=user, action=Role.CHECK, environment=PROD, integration=integration)
    assert not can(user=user, action=Role.CHECK, environment=PROD, integration=other)
    assert not can(user=user, action=Role.CHECK, environment=PROD)


def test_an_expired_grant_gives_nothing(outsider, superuser, integration):
    grant = grant_create(user=outsider, role=Role.EDIT, valid_until=later(minutes=5),
                         reason="fix", granted_by=superuser)
    AccessGrant.objects.filter(pk=grant.pk).update(valid_until=later(seconds=-1))
    assert roles(user=fresh(outsider), environment=PROD) == set()


def test_a_revoked_grant_gives_nothing_and_both_ends_are_audited(outsider, superuser):
    grant = grant_create(user=outsider, role=Role.EDIT, valid_until=later(days=1),
                         reason="fix", granted_by=superuser)
    grant_revoke(grant=grant, revoked_by=superuser)
    assert roles(user=fresh(outsider), environment=PROD) == set()
    grant_event = AuditEvent.objects.get(action=AuditAction.GRANT)
    assert grant_event.details["user"] == "outsider" and grant_event.details["role"] == "edit"
    assert AuditEvent.objects.get(action=AuditAction.REVOKE).target == f"grant #{grant.pk}"
    with pytest.raises(GrantError, match="already revoked"):
        grant_revoke(grant=grant, revoked_by=superuser)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"valid_until": timezone.now() - timedelta(minutes=1)}, "future"),
    ({"reason": "  "}, "reason"),
    # Kept in the grant and in its audit event: what a reviewer can read, and storable text.
    ({"reason": "x" * 2001}, "has 2,001 characters; keep it to 2,000"),
    ({"reason": "on call\x00"}, "null character"),
    ({"role": "admin"}, "Unknown role"),
    ({"valid_until": timezone.now() + timedelta(days=367)}, "at most 366 days"),
    # Converted to UTC for the database, this end is past datetime's year 9999.
    ({"valid_until": datetime(9999, 12, 31, 23, tzinfo=ZoneInfo("America/Regina"))},
     "at most 366 days"),
])
def test_bad_grants_are_refused_with_a_reason(outsider, superuser, kwargs, message):
    values = {"user": outsider, "role": Role.VIEW, "valid_until": later(hours=1),
              "reason": "because", "granted_by": superuser, **kwargs}
    with pytest.raises(GrantError, match=message):
        grant_create(**values)
    assert not AccessGrant.objects.exists()


def test_a_grant_may_last_a_year(outsider, superuser):
    grant = grant_create(user=outsider, role=Role.VIEW, valid_until=later(days=366, minutes=-1),
                         reason="on call this year", granted_by=superuser)
    assert grant.is_active()


def test_nobody_grants_to_themselves(db):
    manager = make_user("manager")
    manager.user_permissions.add(Permission.objects.get(codename="add_accessgrant"))
    manager = fresh(manager)
    with pytest.raises(GrantError, match="yourself"):
        grant_create(user=manager, role=Role.PROMOTE, valid_until=later(hours=1),
                     reason="me", granted_by=manager)


def test_a_grant_manager_without_superuser_status_may_grant(outsider):
    manager = make_user("manager")
    manager.user_permissions.add(Permission.objects.get(codename="add_accessgrant"))
    grant = grant_create(user=outsider, role=Role.VIEW, valid_until=later(hours=1),
                         reason="audit", granted_by=fresh(manager))
    assert grant.granted_by == manager


def test_a_refused_grant_is_audited_as_denied(lead, outsider):
    with pytest.raises(GrantError, match="may not grant"):
        grant_create(user=outsider, role=Role.VIEW, valid_until=later(hours=1),
                     reason="x", granted_by=lead)
    denied = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert denied.environment == "production" and denied.details == {"attempted": "grant"}


# --- Commands -------------------------------------------------------------------------------

def test_grant_access_prints_the_id_and_revoke_access_ends_it(outsider, superuser,
                                                              integration):
    until = later(days=2).isoformat()
    code, out, _ = run("grant_access", "outsider", "--role", "check", "--until", until,
                       "--reason", "incident 42", "--by", "root", "--integration", "acme-pos")
    assert code == 0
    grant = AccessGrant.objects.get(pk=int(out.strip()))
    assert (grant.role, grant.integration, grant.granted_by) == ("check", integration, superuser)
    code, out, _ = run("revoke_access", str(grant.pk), "--by", "root")
    assert code == 0 and f"grant #{grant.pk}" in out
    assert not AccessGrant.objects.get(pk=grant.pk).is_active()
    code, _, message = run("revoke_access", str(grant.pk), "--by", "root")
    assert code == 1 and "already revoked" in message
    assert audit_verify().ok


def test_grant_access_to_a_name_that_is_another_integrations_slug_picks_the_one_so_named(
        outsider, superuser, integration):
    # Possible before the admin refused it: "acme-pos" is Acme POS's slug and this one's name.
    other = Integration.objects.create(name="acme-pos", slug="acme-pos-2")
    code, out, _ = run("grant_access", "outsider", "--role", "view", "--until",
                       later(days=1).isoformat(), "--reason", "r", "--by", "root",
                       "--integration", "acme-pos")
    assert code == 0 and AccessGrant.objects.get(pk=int(out)).integration == other


def test_grant_access_by_someone_without_the_right_exits_1_and_is_audited(lead, outsider):
    code, _, message = run("grant_access", "outsider", "--role", "view", "--until",
                           later(days=1).isoformat(), "--reason", "x", "--by", "lead")
    assert code == 1 and "may not grant" in message
    assert not AccessGrant.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor_name="lead").exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--until", "tomorrow"], 2, "ISO 8601"),
    (["--until", "2001-01-01T00:00+00:00"], 1, "future"),
    (["--until", "0001-01-01T00:00:00+14:00"], 1, "future"),
    (["--until", "9999-12-31T23:59:59-05:00"], 1, "at most 366 days"),
    (["--until", "9999-12-31T23:59:59"], 1, "at most 366 days"),  # local time, behind UTC
    (["--by", "nobody"], 1, "No user is named 'nobody'"),
    (["--integration", "nope"], 1, "No integration"),
    # Empty was read as left out: a grant on every integration instead of a refusal.
    (["--integration", ""], 2, "--integration is empty"),
    (["--integration", "  "], 2, "--integration is empty"),
])
def test_grant_access_refuses_bad_input(outsider, superuser, settings, args, code, message):
    settings.TIME_ZONE = "America/Regina"
    values = {"--until": later(days=1).isoformat(), "--by": "root"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        values[flag] = value
    flat = [item for pair in values.items() for item in pair]
    result = run("grant_access", "outsider", "--role", "view", "--reason", "r", *flat)
    assert result[0] == code and message in result[2]
    assert not AccessGrant.objects.exists()


def test_revoke_access_needs_the_right_and_an_existing_grant(outsider, superuser, lead):
    grant = grant_create(user=outsider, role=Role.VIEW, valid_until=later(hours=1),
                         reason="r", granted_by=superuser)
    assert run("revoke_access", str(grant.pk), "--by", "lead")[0] == 1
    assert AccessGrant.objects.get(pk=grant.pk).is_active()
    assert run("revoke_access", "999999", "--by", "root")[0] == 1
    assert run("revoke_access", "not-a-grant", "--by", "root")[0] == 1


@pytest.mark.parametrize("ident", ["²", "#¹²", "99999999999999999999999"])
def test_revoke_access_of_digits_that_are_no_grant_number_says_there_is_no_such_grant(
        superuser, ident):
    assert run("revoke_access", ident, "--by", "root") == (1, "", f"There is no grant {ident}.")


# --- Step-up confirmation ---------------------------------------------------------------------

def test_the_confirm_page_checks_the_password_and_returns_to_next(client, lead):
    client.force_login(lead)
    assert client.get("/accounts/confirm/?next=/audit/").status_code == 200
    response = client.post("/accounts/confirm/", {"password": "wrong", "next": "/access/"})
    assert response.status_code == 403
    response = client.post("/accounts/confirm/", {"password": PASSWORD, "next": "/access/"})
    assert response.status_code == 302 and response["Location"] == "/access/"
    assert AuditEvent.objects.filter(action=AuditAction.STEP_UP, actor_name="lead").exists()


def test_the_confirm_page_never_sends_anyone_to_another_site(client, lead):
    client.force_login(lead)
    response = client.post("/accounts/confirm/",
                           {"password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.parametrize("target", ["overview", "dashboard:audit", "a.b"])
def test_the_confirm_page_takes_only_a_path_as_next(client, lead, target):
    # A bare word was read as a URL pattern name: a 500 after the password was accepted.
    client.force_login(lead)
    response = client.post("/accounts/confirm/", {"password": PASSWORD, "next": target})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get(f"/accounts/confirm/?next={target}")
    assert page.status_code == 200 and f'value="{target}"'.encode() not in page.content


def test_editing_a_production_package_in_the_admin_asks_for_the_password(client,
                                                                         release_manager):
    package = onboard(environment=PROD).package
    client.force_login(release_manager)
    change = f"/admin/onboarding/onboardingpackage/{package.pk}/change/"
    response = client.get(change)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm/?next=")
    client.post("/accounts/confirm/", {"password": PASSWORD, "next": change})
    assert client.get(change).status_code == 200


def test_a_sandbox_package_in_the_admin_needs_no_confirmation(client, superuser,
                                                              sandbox_version):
    client.force_login(superuser)
    change = f"/admin/onboarding/onboardingpackage/{sandbox_version.package.pk}/change/"
    assert client.get(change).status_code == 200


def test_a_refused_production_edit_in_the_admin_is_audited(client, lead):
    package = onboard(environment=PROD).package
    lead.is_staff = True
    lead.save()
    client.force_login(lead)
    change = f"/admin/onboarding/onboardingpackage/{package.pk}/change/"
    assert client.post(change, {"client_id": "x"}).status_code == 403
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, environment="production",
                                     details__attempted="edit").exists()


# --- Production access page and the dashboard's grant actions --------------------------------

@pytest.mark.parametrize(("who", "status"), [("auditor", 200), ("superuser", 200),
                                              ("lead", 403), ("release_manager", 403),
                                              ("outsider", 404)])
def test_only_auditors_and_superusers_see_who_has_production_access(
        db, client, request, who,
                                                                    status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/access/").status_code == status
    assert client.get("/access/report.csv").status_code == status


def test_the_access_page_shows_how_each_user_has_access(client, auditor, release_manager,
                                                        superuser, outsider, integration):
    grant = grant_create(user=outsider, role=Role.REVEAL, valid_until=later(hours=3),
                         reason="Postman set-up", granted_by=superuser, integration=integration)
    client.force_login(auditor)
    body = client.get("/access/").content.decode()
    assert "group Release managers" in body
    assert f"grant #{grant.pk} until" in body and "granted by root" in body
    assert "superuser" in body
    csv_body = client.get("/access/report.csv").content.decode()
    assert csv_body.splitlines()[0].startswith("user,roles,integration_roles,how")
    assert "outsider" in csv_body and "Acme POS: view reveal" in csv_body


def test_the_last_production_action_is_in_words_on_the_page_and_a_code_in_the_csv(
        client, auditor, release_manager, integration):
    audit_record(action=AuditAction.CHECK, actor=release_manager, integration=integration,
                 environment=Environment.PRODUCTION, target="check")
    client.force_login(auditor)
    body = client.get("/access/").content.decode()
    label = '<td role="cell" data-label="Last Production action">'
    assert f"{label}Connectivity check <time" in body and f"{label}check <time" not in body
    csv_body = client.get("/access/report.csv").content.decode()
    assert ",check," in csv_body


def test_downloading_the_access_report_is_audited_and_is_no_production_action(
        client, auditor, superuser, outsider):
    from onboarding.services.access_report import access_report

    client.force_login(auditor)
    client.get("/access/")  # reading the page sends no copy anywhere: not an export
    assert not AuditEvent.objects.filter(action=AuditAction.ACCESS_EXPORT).exists()
    response = client.get("/access/report.csv", HTTP_USER_AGENT="csv-test")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action=AuditAction.ACCESS_EXPORT)
    assert (event.actor_name, event.environment, event.target, event.details,
            event.user_agent) == ("auditor", "", "csv", {"format": "csv"}, "csv-test")
    assert AuditAction(event.action).label == "Access report exported"
    # The report's "last Production action" of the auditor stays empty: reading it is none.
    last = {row.username: row.last_action for row in access_report()}
    assert "auditor" in last and last["auditor"] is None
    assert audit_verify().ok


@pytest.mark.parametrize(("who", "status"), [("lead", 403), ("outsider", 404)])
def test_a_refused_access_report_download_records_no_export(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/access/report.csv").status_code == status
    assert not AuditEvent.objects.filter(action=AuditAction.ACCESS_EXPORT).exists()


def test_the_nav_shows_the_access_pages_only_to_those_who_may_see_them(client, auditor, lead):
    client.force_login(auditor)
    body = client.get("/").content.decode()
    assert "Production access" in body and "Audit log" in body
    client.force_login(lead)
    body = client.get("/").content.decode()
    assert "Production access" not in body and "Audit log" not in body


def test_a_superuser_grants_and_revokes_from_the_dashboard_after_confirming(client, superuser,
                                                                            outsider):
    client.force_login(superuser)
    assert client.get("/access/grants/new/").status_code == 200
    form = {"user": "outsider", "role": "check", "valid_until": later(days=1).strftime(
        "%Y-%m-%d %H:%M"), "reason": "on call"}
    response = client.post("/access/grants/new/", form)
    assert response.status_code == 400 and not AccessGrant.objects.exists()
    response = client.post("/access/grants/new/", {**form, "confirm_password": PASSWORD})
    assert response.status_code == 302
    grant = AccessGrant.objects.get()
    assert can(user=fresh(outsider), action=Role.CHECK, environment=PROD)
    assert client.post(f"/access/grants/{grant.uuid}/revoke/").status_code == 302
    assert not AccessGrant.objects.get().is_active()


def test_the_grant_form_names_the_time_zone_its_until_is_read_in(client, superuser, settings):
    settings.TIME_ZONE = "America/Regina"
    client.force_login(superuser)
    body = client.get("/access/grants/new/").content.decode()
    assert "e.g. 2026-12-31 18:00, in America/Regina time" in body
    assert "the site's time zone" not in body


@pytest.mark.parametrize(("zone", "valid_until", "message"), [
    # Behind UTC: 9999-12-31 23:00 there is in the year 10000 in UTC.
    ("America/Regina", "9999-12-31 23:00", "A grant can last at most 366 days"),
    ("America/Regina", "9999-12-31T23:59-05:00", "A grant can last at most 366 days"),
    # Ahead of UTC: 0001-01-01 00:00 there is in the year 0 in UTC.
    ("Asia/Tokyo", "0001-01-01 00:00", "The grant must end in the future."),
])
def test_a_grant_end_out_of_range_is_a_field_error_not_a_500(client, superuser, outsider,
                                                              settings, zone, valid_until,
                                                              message):
    settings.TIME_ZONE = zone
    client.force_login(superuser)
    response = client.post("/access/grants/new/", {
        "user": "outsider", "role": "check", "valid_until": valid_until, "reason": "on call",
        "confirm_password": PASSWORD})
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["valid_until"]
    assert message in response.content.decode()
    assert not AccessGrant.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.GRANT).exists()


def test_a_grant_reason_too_long_is_a_field_error_and_keeps_the_form(client, superuser,
                                                                      outsider):
    client.force_login(superuser)
    body = client.get("/access/grants/new/").content.decode()
    assert 'maxlength="2000"' in body
    reason = "on call " * 300  # 2,400 characters
    response = client.post("/access/grants/new/", {
        "user": "outsider", "role": "check", "valid_until": later(days=1).strftime(
            "%Y-%m-%d %H:%M"), "reason": reason, "confirm_password": PASSWORD})
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["reason"]
    assert response.context["form"]["reason"].value() == reason
    assert not AccessGrant.objects.exists()


def test_only_grant_managers_reach_the_grant_actions(client, auditor, outsider, lead):
    client.force_login(auditor)
    assert client.get("/access/grants/new/").status_code == 403
    client.force_login(outsider)
    assert client.get("/access/grants/new/").status_code == 404


@pytest.mark.parametrize("who", ["auditor", "lead"])
def test_a_refused_grant_or_revoke_on_the_dashboard_is_audited_like_the_commands(
        client, request, who, superuser, outsider, integration):
    # grant_access and revoke_access audit this refusal in the grant service; the dashboard
    # refuses before calling it, so it has to write the same event itself.
    grant = grant_create(user=outsider, role=Role.VIEW, valid_until=later(hours=1), reason="r",
                         granted_by=superuser, integration=integration)
    user = request.getfixturevalue(who)
    client.force_login(user)
    response = client.post("/access/grants/new/", {
        "user": "outsider", "role": "check", "valid_until": later(days=1).strftime(
            "%Y-%m-%d %H:%M"), "reason": "on call", "confirm_password": PASSWORD})
    assert response.status_code == 403
    refusal = response.content.decode()
    response = client.post(f"/access/grants/{grant.uuid}/revoke/",
                           {"confirm_password": PASSWORD})
    assert response.status_code == 403
    assert AccessGrant.objects.count() == 1 and AccessGrant.objects.get().is_active()
    dashboard = list(AuditEvent.objects.filter(action=AuditAction.DENIED).order_by("seq"))
    assert [(e.actor_name, e.environment, e.details["attempted"]) for e in dashboard] == [
        (who, "production", "grant"), (who, "production", "revoke")]
    revoke = dashboard[1]
    assert (revoke.target, revoke.integration_name) == (f"grant #{grant.pk}", "Acme POS")
    # The same refusals from the commands: the same kind of event, so the log reads alike.
    assert run("grant_access", "outsider", "--role", "check", "--until",
               later(days=1).isoformat(), "--reason", "on call", "--by", who)[0] == 1
    assert run("revoke_access", str(grant.pk), "--by", who)[0] == 1
    command = list(AuditEvent.objects.filter(action=AuditAction.DENIED).order_by("seq"))[2:]
    assert [(e.actor_name, e.environment, e.details["attempted"]) for e in command] == [
        (who, "production", "grant"), (who, "production", "revoke")]
    assert (command[1].target, command[1].integration_name) == (
        revoke.target, revoke.integration_name)
    assert audit_verify().ok
    assert "Only superusers and grant managers may change Production access." in refusal


def test_outsiders_get_404_from_the_grant_actions_and_leave_no_trace(client, superuser,
                                                                      outsider, lead):
    grant = grant_create(user=lead, role=Role.VIEW, valid_until=later(hours=1), reason="r",
                         granted_by=superuser)
    client.force_login(outsider)
    assert client.get("/access/grants/new/").status_code == 404
    assert client.post("/access/grants/new/", {"user": "outsider"}).status_code == 404
    assert client.post(f"/access/grants/{grant.uuid}/revoke/").status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.DENIED).exists()
    assert AccessGrant.objects.get().is_active()


# --- Users and groups in the admin ------------------------------------------------------------

def test_changing_a_group_in_the_admin_asks_for_the_password_and_names_the_admin(client,
                                                                                 superuser):
    group = Group.objects.get(name="Auditors")
    change = f"/admin/auth/group/{group.pk}/change/"
    client.force_login(superuser)
    response = client.get(change)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    client.post("/accounts/confirm/", {"password": PASSWORD, "next": change})
    promote = Permission.objects.get(codename="promote_production")
    kept = list(group.permissions.values_list("pk", flat=True))
    response = client.post(change, {"name": "Auditors", "permissions": [*kept, promote.pk]})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.actor_name == "root"
    assert event.details == {"change": "added", "group": "Auditors",
                             "permissions": ["onboarding.promote_production"]}
    assert event.environment == "production"


def test_deleting_an_account_in_the_admin_is_audited_under_the_admins_name(client, superuser,
                                                                           release_manager):
    delete = f"/admin/auth/user/{release_manager.pk}/delete/"
    client.force_login(superuser)
    client.post("/accounts/confirm/", {"password": PASSWORD, "next": delete})
    response = client.post(delete, {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.latest("seq")
    assert (event.actor_name, event.target) == ("root", "release")
    assert event.details["change"] == "deleted" and event.environment == "production"


def test_setting_an_accounts_password_in_the_admin_asks_for_the_password_and_is_audited(
        client, superuser, release_manager):
    url = f"/admin/auth/user/{release_manager.pk}/password/"
    client.force_login(superuser)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    new = "Taken-Over-Pass-991"
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
    release_manager.refresh_from_db()
    assert not release_manager.check_password(new)  # refused without a fresh confirmation

    client.post("/accounts/confirm/", {"password": PASSWORD, "next": url})
    assert client.post(url, {"password1": new, "password2": new,
                             "usable_password": "true"}).status_code == 302
    release_manager.refresh_from_db()
    assert release_manager.check_password(new)
    event = AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE).get()
    assert (event.actor_name, event.target, event.environment) == ("root", "release",
                                                                   "production")
    assert new not in str(event.details)


@pytest.mark.parametrize("where", ["own", "admin"])
def test_a_password_change_whose_audit_event_fails_does_not_happen(client, superuser, outsider,
                                                                     monkeypatch, where):
    from django.db import DatabaseError

    from onboarding.services import audit as audit_service

    def broken(event):
        raise DatabaseError("audit table locked")

    new = "Never-Stored-Pass-8812"
    if where == "own":
        client.force_login(outsider)
        url, data = "/accounts/password/", {"old_password": PASSWORD, "new_password1": new,
                                            "new_password2": new}
    else:
        client.force_login(superuser)
        url = f"/admin/auth/user/{outsider.pk}/password/"
        client.post("/accounts/confirm/", {"password": PASSWORD, "next": url})
        data = {"password1": new, "password2": new, "usable_password": "true"}
    monkeypatch.setattr(audit_service, "_sign", broken)
    client.raise_request_exception = False
    assert client.post(url, data).status_code == 500
    outsider.refresh_from_db()
    assert outsider.check_password(PASSWORD) and not outsider.check_password(new)


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000  # a preferred hasher other than the tests' MD5, cheaply


def test_changing_ones_own_password_is_audited_and_a_sign_in_is_not(client, outsider,
                                                                     settings):
    client.force_login(outsider)
    new = "Lead-New-Password-5521"
    response = client.post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": new, "new_password2": new})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE).get()
    # No Production roles: not filed under Production.
    assert (event.actor_name, event.target, event.environment) == ("outsider", "outsider", "")
    client.logout()
    # A sign-in rehashes a password stored with an older hasher: that is no change.
    settings.PASSWORD_HASHERS = [f"{__name__}.QuickPBKDF2PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]
    response = client.post("/accounts/login/", {"username": "outsider", "password": new})
    assert response.status_code == 302
    outsider.refresh_from_db()
    assert outsider.password.startswith("pbkdf2_sha256$")  # rehashed at sign-in
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE).count() == 1


def test_grants_are_listed_read_only_in_the_admin(client, superuser, outsider):
    grant = grant_create(user=outsider, role=Role.VIEW, valid_until=later(hours=1),
                         reason="r", granted_by=superuser)
    client.force_login(superuser)
    assert client.get("/admin/onboarding/accessgrant/").status_code == 200
    assert client.get(f"/admin/onboarding/accessgrant/{grant.pk}/change/").status_code == 200
    assert client.get("/admin/onboarding/accessgrant/add/").status_code == 403


@postgres_only
def test_a_users_live_grants_are_searched_in_an_index_of_unrevoked_grants(outsider, superuser):
    # Years of grants: most ended long ago or were revoked, a few are live.
    now = timezone.now()
    AccessGrant.objects.bulk_create(
        AccessGrant(user=outsider if n % 10 == 0 else superuser, role=Role.VIEW, reason="old",
                    valid_until=now - timedelta(days=n), granted_by=superuser,
                    revoked_at=now if n % 3 == 0 else None)
        for n in range(1, 600))
    grant_create(user=outsider, role=Role.CHECK, valid_until=later(days=1), reason="on call",
                 granted_by=superuser)
    sql = last_query(lambda: active_grants(user=fresh(outsider)))
    scans = index_scans(sql, analyze=(AccessGrant._meta.db_table,))
    assert "valid_until >" in scans.get("grant_live_by_user", ""), scans
    assert [g.role for g in active_grants(user=fresh(outsider))] == [Role.CHECK]


@pytest.mark.parametrize("mistake", [{"reason": ""}, {"valid_until": "not a date"},
                                     {"confirm_password": "wrong-password"}])
def test_a_self_grant_on_the_page_is_audited_whatever_else_is_wrong(client, superuser,
                                                                     mistake):
    from onboarding.models import AuditEvent
    from onboarding.services.audit import AuditAction

    client.force_login(superuser)
    form = {"user": superuser.username, "role": "reveal", "reason": "me too",
            "valid_until": later(days=1).strftime("%Y-%m-%d %H:%M"), **mistake}
    response = client.post("/access/grants/new/", form)
    assert response.status_code == 400
    assert b"You cannot grant Production access to yourself" in response.content
    denied = AuditEvent.objects.filter(action=AuditAction.DENIED, actor_id=superuser.pk).get()
    assert denied.details == {"attempted": "grant", "refused": "grant to themselves"}
    assert not AccessGrant.objects.exists()


def test_grant_access_of_a_grant_already_held_says_nothing_was_granted_once(outsider,
                                                                            superuser, lead):
    args = ["outsider", "--role", "view", "--until", later(days=1).isoformat(), "--by", "root"]
    assert run("grant_access", *args, "--reason", "first")[0] == 0
    code, _, message = run("grant_access", *args, "--reason", "second")
    assert code == 1 and "already holds" in message
    assert message.lower().count("nothing was granted") == 1


# --- Roles remembered per request -----------------------------------------------------------


def test_roles_are_worked_out_afresh_when_the_permissions_are_read_again(outsider):
    """Roles are remembered on the user object with the permission cache they came from; a
    user whose permissions were read again (the cache dropped) gets the new roles."""
    assert roles(user=outsider, environment=PROD) == set()
    outsider.user_permissions.add(Permission.objects.get(codename="check_production"))
    assert roles(user=outsider, environment=PROD) == set()  # as Django's own cache answers
    del outsider._perm_cache
    assert roles(user=outsider, environment=PROD) == {Role.CHECK, Role.VIEW}
    assert outsider.has_perm("onboarding.check_production")  # the same answer as Django's


def test_remembered_roles_still_follow_active_and_superuser_status(outsider):
    outsider.user_permissions.add(Permission.objects.get(codename="check_production"))
    outsider = fresh(outsider)
    assert can(user=outsider, action=Role.CHECK, environment=PROD)
    outsider.is_active = False
    assert roles(user=outsider, environment=PROD) == set()
    outsider.is_active, outsider.is_superuser = True, True
    assert Role.PROMOTE in roles(user=outsider, environment=PROD)


class OnlyHasPerm:
    """An authentication backend that answers has_perm and keeps no permission cache."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return perm == "onboarding.check_production"


def test_roles_ask_has_perm_of_a_backend_that_keeps_no_permission_cache(outsider, settings):
    settings.AUTHENTICATION_BACKENDS = ["tests.test_access.OnlyHasPerm"]
    assert roles(user=fresh(outsider), environment=PROD) == {Role.CHECK, Role.VIEW}
    assert roles(user=fresh(outsider), environment=Environment.SANDBOX) == set()
