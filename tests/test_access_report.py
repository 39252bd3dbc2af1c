"""The "who has Production access" report is exactly `can()`'s answer (a property test over
random users, groups, permissions and grants), and the access_report command's formats."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from io import StringIO

from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onboarding.models import AccessGrant, AuditEvent, Environment, Integration, Role
from onboarding.services.access import can
from onboarding.services.access_report import UNKNOWN, _last_actions, access_report
from onboarding.services.audit import AuditAction, audit_acting, audit_record
from onboarding.services.grants import grant_create
from tests.conftest import make_user
from tests.explain import index_scans, last_query, postgres_only

PROD = Environment.PRODUCTION
CODENAMES = [f"{role}_{env}" for env in Environment for role in Role
             if not (role == Role.PROMOTE and env == Environment.SANDBOX)]
GROUPS = ["Integration leads", "Release managers", "Auditors", "Custom"]

grants = st.lists(st.tuples(
    st.sampled_from(Role.values),
    st.sampled_from([None, 0, 1]),                       # all integrations, or one of two
    st.sampled_from(["active", "expired", "revoked"]),
), max_size=3)
users = st.lists(st.fixed_dictionaries({
    "superuser": st.sampled_from([False, False, False, True]),
    "active": st.sampled_from([True, True, True, False]),
    "groups": st.sets(st.sampled_from(GROUPS), max_size=2),
    "perms": st.sets(st.sampled_from(CODENAMES), max_size=3),
    "grants": grants,
}), min_size=1, max_size=5)


def build(specs: list[dict], custom_perms: set[str]) -> list[Integration]:
    integrations = [Integration.objects.create(name=n, slug=n.lower()) for n in ("Ia", "Ib")]
    custom = Group.objects.create(name="Custom")
    custom.permissions.set(Permission.objects.filter(codename__in=custom_perms))
    granter = User.objects.create_superuser("granter-root", password="x" * 12)
    now = timezone.now()
    for n, spec in enumerate(specs):
        user = make_user(f"user{n}", *spec["groups"], is_superuser=spec["superuser"],
                         is_active=spec["active"])
        user.user_permissions.set(Permission.objects.filter(codename__in=spec["perms"]))
        for role, where, state in spec["grants"]:
            AccessGrant.objects.create(
                user=user, role=role, reason="property test", granted_by=granter,
                integration=None if where is None else integrations[where],
                valid_until=now + (timedelta(hours=-1) if state == "expired"
                                   else timedelta(hours=1)),
                revoked_at=now if state == "revoked" else None,
            )
    return integrations


def answers(user: User, integration: Integration | None) -> set[str]:
    fresh = User.objects.get(pk=user.pk)  # no cached grants or permissions between questions
    return {role for role in Role.values
            if can(user=fresh, action=role, environment=PROD, integration=integration)}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=users, custom_perms=st.sets(st.sampled_from(CODENAMES), max_size=4))
def test_the_report_lists_exactly_who_can_act_in_production_with_the_same_roles(
        db, specs, custom_perms):
    with transaction.atomic():
        integrations = build(specs, custom_perms)
        report = {row.username: row for row in access_report()}
        for user in User.objects.all():
            expected = {scope: answers(user, scope) for scope in [None, *integrations]}
            if not any(expected.values()):
                assert user.username not in report, f"{user} listed without Production access"
                continue
            assert user.username in report, f"{user} missing though can() allows {expected}"
            row = report[user.username]
            for scope, held in expected.items():
                assert row.roles_on(scope) == held, (user.username, scope, held)
        transaction.set_rollback(True)


def command(fmt: str) -> str:
    out = StringIO()
    call_command("access_report", "--format", fmt, stdout=out)
    return out.getvalue()


def test_access_report_prints_table_csv_and_json(release_manager, superuser, outsider, lead):
    grant_create(user=outsider, role=Role.CHECK, granted_by=superuser, reason="on call",
                 valid_until=timezone.now() + timedelta(days=1))
    rows = [json.loads(line) for line in command("json").splitlines()]
    by_user = {row["user"]: row for row in rows}
    assert set(by_user) == {"release", "root", "outsider", "lead"}
    assert by_user["release"]["roles"] == "view check edit promote"
    assert by_user["lead"]["how"] == "group Integration leads"
    assert by_user["outsider"]["how"].startswith("grant #")
    assert by_user["outsider"]["granted_by"] == "root"
    parsed = list(csv.DictReader(StringIO(command("csv"))))
    assert [r["user"] for r in parsed] == ["lead", "outsider", "release", "root"]
    table = command("table")
    assert "release" in table and "how: group Release managers" in table


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u202e"  # retitle the window, clear the screen, reverse text


def test_names_with_escape_codes_are_printed_escaped_in_every_format(db):
    # Group names are set in the admin, user names by whoever creates the account: neither is
    # checked for control characters, so the command must not print them raw.
    group = Group.objects.create(name=f"ops{ESCAPES}")
    group.permissions.add(Permission.objects.get(codename="view_production"))
    make_user(f"bob{ESCAPES}").groups.add(group)
    for fmt in ("table", "csv", "json"):
        out = command(fmt)
        assert not any(char in out for char in "\x1b\x07\u202e"), fmt
    table = command("table")
    assert "how: group ops\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in table
    assert "bob\\x1b]0;pwned" in table
    assert "ops\\x1b]0;pwned" in command("csv")
    # JSON keeps the names exactly, as its own \u escapes.
    rows = [json.loads(line) for line in command("json").splitlines()]
    assert rows[0]["user"] == f"bob{ESCAPES}"
    assert rows[0]["how"] == f"group ops{ESCAPES}"


def test_an_empty_report_says_so(db):
    assert command("table").strip() == "Nobody has Production access."


def test_the_report_says_who_gave_group_and_superuser_access_from_the_audit_log(superuser):
    from onboarding.services.audit import audit_acting

    newcomer = make_user("newcomer")
    with audit_acting(actor=superuser):
        newcomer.groups.add(Group.objects.get(name="Release managers"))
    row = next(r for r in access_report() if r.username == "newcomer")
    source = next(s for s in row.sources if s.label == "group Release managers")
    assert source.granted_by == "root" and source.granted_at is not None
    root_row = next(r for r in access_report() if r.username == "root")
    assert root_row.sources[0].label == "superuser"
    assert root_row.sources[0].granted_by == "system"  # created outside any request


def test_each_way_in_has_its_own_granter_and_time_in_the_same_order(superuser):
    audited = make_user("dave", "Integration leads")  # joined by "system", as the log says
    unrecorded = make_user("carol")
    with connection.cursor() as cursor:  # past the signals: the log never saw this membership
        cursor.execute("INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
                       [unrecorded.pk, Group.objects.get(name="Integration leads").pk])
    until = timezone.now() + timedelta(days=1)
    for user in (audited, unrecorded):
        grant_create(user=user, role=Role.CHECK, granted_by=superuser, reason="on call",
                     valid_until=until)
    orphan = AccessGrant.objects.create(user=unrecorded, role=Role.EDIT, reason="on call",
                                        granted_by=None, valid_until=until)  # granter deleted
    rows = {row["user"]: row for row in map(json.loads, command("json").splitlines())}
    parsed = {row["user"]: row for row in csv.DictReader(StringIO(command("csv")))}
    for exported in (rows, parsed):
        dave, carol = exported["dave"], exported["carol"]
        assert dave["how"].startswith("group Integration leads; grant #")
        assert dave["granted_by"] == "system; root"
        assert carol["how"].startswith("group Integration leads; grant #")
        assert f"; grant #{orphan.pk} until" in carol["how"]
        assert carol["granted_by"] == "—; root; (deleted user)"
        times = carol["granted_at"].split("; ")
        assert times[0] == "—" and times[2] == orphan.granted_at.isoformat()
        for row in (dave, carol):
            assert (len(row["how"].split("; ")) == len(row["granted_by"].split("; "))
                    == len(row["granted_at"].split("; ")))


def _team(first: int, size: int, granter: User) -> None:
    """Users who hold Production access each way the report names: group, permission, grant
    on all integrations and on one."""
    integration = Integration.objects.get_or_create(name="Scoped", slug="scoped")[0]
    for n in range(first, first + size):
        make_user(f"group{n}", "Release managers")
        direct = make_user(f"direct{n}")
        direct.user_permissions.add(Permission.objects.get(codename="check_production"))
        for where in (None, integration):
            grant_create(user=make_user(f"grant{n}-{where is None}"), role=Role.CHECK,
                         integration=where, granted_by=granter, reason="on call",
                         valid_until=timezone.now() + timedelta(days=1))


def report_queries() -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        rows = access_report()
    return len(captured), len(rows)


def test_the_report_makes_the_same_queries_for_a_small_and_a_large_team(superuser):
    _team(0, 2, superuser)
    small, listed = report_queries()
    assert listed == 1 + 2 * 4
    _team(2, 10, superuser)
    large, listed = report_queries()
    assert listed == 1 + 12 * 4
    assert small == large, f"{small} queries for 9 users, {large} for 49"


def page_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/access/")
    assert response.status_code == 200
    return len(captured)


def test_the_access_page_makes_the_same_queries_for_a_small_and_a_large_team(superuser, client):
    client.force_login(superuser)
    _team(0, 2, superuser)
    client.get("/access/")  # first visit: session bookkeeping that later visits do not repeat
    small = page_queries(client)
    _team(2, 10, superuser)
    assert page_queries(client) == small


def test_each_rows_last_production_action_is_its_newest_that_was_not_refused(
        superuser, release_manager, outsider):
    quiet = make_user("quiet", is_superuser=True)  # Production access, never acted there
    for actor, action, environment in [
            (superuser, AuditAction.CHECK, PROD), (release_manager, AuditAction.CHECK, PROD),
            (superuser, AuditAction.PROMOTION, PROD),  # the superuser's last
            (release_manager, AuditAction.ROLLBACK, PROD),  # the release manager's last
            (superuser, AuditAction.DENIED, PROD), (release_manager, AuditAction.CHECK, "sandbox"),
            (outsider, AuditAction.CHECK, PROD), (quiet, AuditAction.DENIED, PROD)]:
        audit_record(action=action, actor=actor, environment=environment)
    rows = {row.username: row for row in access_report()}
    assert rows["root"].last_action.action == AuditAction.PROMOTION
    assert rows["release"].last_action.action == AuditAction.ROLLBACK
    assert rows["quiet"].last_action is None
    assert "outsider" not in rows  # no Production role: not listed, whatever it did there


def test_a_password_change_is_audited_under_production_but_is_no_production_action(superuser):
    viewer = make_user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_production"))
    audit_record(action=AuditAction.CHECK, actor=superuser, environment=PROD)
    for user in (superuser, viewer):
        with audit_acting(actor=user):  # as the password page does: each changes their own
            user.set_password("another-long-passphrase-77")
            user.save()
    changes = AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE)
    assert set(changes.values_list("environment", flat=True)) == {PROD}  # the event stays
    rows = {row.username: row for row in access_report()}
    assert rows["root"].last_action.action == AuditAction.CHECK
    assert rows["viewer"].last_action is None
    assert "password_change" not in command("table")


@postgres_only
def test_the_last_production_actions_are_found_in_an_index_of_production_events(superuser):
    users = [make_user(f"person{n}", is_superuser=True) for n in range(20)]
    # A long log in which Production actions are few, and refusals fewer still.
    AuditEvent.objects.bulk_create(
        AuditEvent(seq=1_000_000 + n, prev_hmac="0" * 64, hmac=f"{n:064x}",
                   actor_id=users[n % 20].pk, actor_name=users[n % 20].username,
                   action=AuditAction.DENIED if n % 50 == 0 else AuditAction.CHECK,
                   environment=PROD if n % 10 == 0 else "sandbox")
        for n in range(2000))
    sql = last_query(lambda: _last_actions([user.pk for user in users]))
    scans = index_scans(sql, analyze=(AuditEvent._meta.db_table,))
    assert "actor_id =" in scans.get("audit_production_actions", ""), scans


def test_the_page_shows_a_grants_end_as_a_local_time_like_every_time(client, auditor,
                                                                    superuser, outsider):
    # "grant #1 until 2026-12-04 16:35 UTC" was text in the server's zone, beside a "granted
    # on" the browser shows in its own.
    until = timezone.now() + timedelta(days=1)
    grant = grant_create(user=outsider, role=Role.CHECK, granted_by=superuser,
                         reason="on call", valid_until=until)
    client.force_login(auditor)
    html = client.get("/access/").content.decode()
    assert f'grant #{grant.pk} until <time datetime="' in html
    assert f"grant #{grant.pk} until {timezone.localtime(until):%Y-%m-%d %H:%M} " not in html


def test_the_page_names_a_deleted_granter_as_the_exports_do(client, auditor, outsider):
    grant = AccessGrant.objects.create(user=outsider, role=Role.CHECK, granted_by=None,
                                       valid_until=timezone.now() + timedelta(days=1),
                                       reason="on call")
    client.force_login(auditor)
    html = client.get("/access/").content.decode()
    assert f"grant #{grant.pk} until" in html and "granted by (deleted user) on" in html


def give(user: User, codename: str, *, by: User) -> None:
    """`by` gives `user` a permission, as the admin would: audited, with `by` as the actor."""
    with audit_acting(actor=by):
        user.user_permissions.add(Permission.objects.get(codename=codename))


def test_a_permission_source_is_credited_to_who_gave_the_production_permission(db):
    # The newest "permission added" event naming the user was taken, whatever it added: a
    # Sandbox permission given later by someone else took the credit for Production access.
    alice = make_user("alice", is_superuser=True)
    bob = make_user("bob", is_superuser=True)
    carol = make_user("carol")
    give(carol, "edit_production", by=alice)
    give(carol, "view_sandbox", by=bob)
    row = next(r for r in access_report() if r.username == "carol").as_dict()
    assert row["granted_by"] == "alice"


def test_a_renamed_account_keeps_who_gave_its_access(db):
    alice = make_user("alice", is_superuser=True)
    carol = make_user("carol")
    with audit_acting(actor=alice):
        carol.groups.add(Group.objects.get(name="Release managers"))
    give(carol, "edit_production", by=alice)
    for name in ("carol-2", "carol-3"):  # renamed twice: the events name "carol"
        carol.username = name
        carol.save()
    row = next(r for r in access_report() if r.username == "carol-3")
    credited = {s.label: s.granted_by for s in row.sources}
    assert credited == {"group Release managers": "alice", "permission": "alice"}


def test_a_name_taken_by_a_new_account_does_not_take_the_old_accounts_credit(db):
    alice = make_user("alice", is_superuser=True)
    bob = make_user("bob", is_superuser=True)
    first = make_user("x")
    give(first, "edit_production", by=alice)
    first.username = "y"
    first.save()
    second = make_user("x")  # the free name, taken by another account
    with connection.cursor() as cursor:  # past the signals: the log never saw this permission
        cursor.execute(
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) VALUES (%s, %s)",
            [second.pk, Permission.objects.get(codename="edit_production").pk])
    rows = {r.username: r for r in access_report()}
    assert rows["y"].sources[0].granted_by == "alice"
    assert rows["x"].sources[0].granter == UNKNOWN  # not alice's grant to the old "x"
    give(second, "view_production", by=bob)
    rows = {r.username: r for r in access_report()}
    assert rows["x"].sources[0].granted_by == "bob"
    assert rows["y"].sources[0].granted_by == "alice"


def rename_group(old: str, new: str, *, by: User) -> Group:
    group = Group.objects.get(name=old)
    group.name = new
    with audit_acting(actor=by):
        group.save()
    return group


def test_renaming_a_group_is_audited_with_its_old_name(db):
    alice = make_user("alice", is_superuser=True)
    rename_group("Release managers", "Release crew", by=alice)
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert event.details == {"group": "Release crew", "change": "renamed",
                             "from": "Release managers"}
    assert (event.actor_name, event.target, event.environment) == (
        "alice", "Release crew", Environment.PRODUCTION)  # it gives Production roles
    sandbox_only = Group.objects.create(name="Sandbox helpers")
    sandbox_only.permissions.add(Permission.objects.get(codename="view_sandbox"))
    rename_group("Sandbox helpers", "Sandbox crew", by=alice)
    assert AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest(
        "seq").environment == ""
    count = AuditEvent.objects.count()
    group = Group.objects.get(name="Sandbox crew")
    group.save()  # saved, not renamed
    Group.objects.create(name="New group")  # new, not renamed
    assert AuditEvent.objects.count() == count


def test_a_renamed_group_keeps_who_gave_its_members_access(db):
    alice = make_user("alice", is_superuser=True)
    bob = make_user("bob", is_superuser=True)
    carol, dave = make_user("carol"), make_user("dave")
    with audit_acting(actor=alice):
        carol.groups.add(Group.objects.get(name="Release managers"))  # from the member's side
    with audit_acting(actor=bob):
        Group.objects.get(name="Release managers").user_set.add(dave)  # from the group's side
    rename_group("Release managers", "Release crew", by=bob)
    rename_group("Release crew", "Release team", by=bob)  # twice: the events name the first
    rows = {r.username: r for r in access_report()}
    assert [(s.label, s.granted_by) for s in rows["carol"].sources] == [
        ("group Release team", "alice")]
    assert [(s.label, s.granted_by) for s in rows["dave"].sources] == [
        ("group Release team", "bob")]


def test_a_group_name_taken_by_a_new_group_does_not_take_the_old_groups_credit(db):
    alice = make_user("alice", is_superuser=True)
    carol, erin = make_user("carol"), make_user("erin")
    with audit_acting(actor=alice):
        carol.groups.add(Group.objects.get(name="Release managers"))
    rename_group("Release managers", "Release crew", by=alice)
    newcomer = Group.objects.create(name="Release managers")  # the freed name, a new group
    newcomer.permissions.add(Permission.objects.get(codename="edit_production"))
    with connection.cursor() as cursor:  # past the signals: the log never saw this membership
        cursor.execute("INSERT INTO auth_user_groups (user_id, group_id) VALUES (%s, %s)",
                       [erin.pk, newcomer.pk])
    rows = {r.username: r for r in access_report()}
    assert [(s.label, s.granted_by) for s in rows["carol"].sources] == [
        ("group Release crew", "alice")]
    assert [(s.label, s.granter) for s in rows["erin"].sources] == [
        ("group Release managers", UNKNOWN)]  # not alice's adding carol to the old group
