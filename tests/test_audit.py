"""The audit log: tamper evidence (edit, delete, reorder), the PostgreSQL trigger, the audit page
with its filters and exports, events for permission changes, and no secret anywhere in it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from onboarding.models import AuditEvent, Environment, PackageVersion
from onboarding.services import packages as packages_service
from onboarding.services.audit import AuditAction, audit_record, audit_verify
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user, onboard, package_data

EVENTS = 5
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="the trigger exists on PostgreSQL only")


@pytest.fixture
def log(db) -> list[AuditEvent]:
    for n in range(EVENTS):
        audit_record(action=AuditAction.CHECK, target=f"event {n}", details={"n": n})
    return list(AuditEvent.objects.order_by("seq"))


AUDIT_TABLES = ("onboarding_auditevent", "onboarding_auditchainhead")


def raw(sql: str, params: list | None = None) -> None:
    """Tamper as someone with database access would: raw SQL, past the model's guards (and, on
    PostgreSQL, past the triggers, as the tables' owner could)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in AUDIT_TABLES:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            for table in AUDIT_TABLES:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def verify() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit_log", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_an_untouched_log_verifies(log):
    code, out, _ = verify()
    assert code == 0
    assert f"{EVENTS} events" in out


@pytest.mark.parametrize("index", range(EVENTS))
def test_editing_any_event_is_detected_and_named(log, index):
    event = log[index]
    raw("UPDATE onboarding_auditevent SET target = %s WHERE id = %s", ["edited", event.pk])
    code, _, message = verify()
    assert code == 1
    assert f"event id {event.pk} (seq {event.seq}" in message
    assert "altered" in message


sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'",
                                 reason="PostgreSQL's column types refuse such values")


def _set(assignment: str) -> str:
    # The third event's row (seq 3); `assignment` is this file's own text, never input.
    return f"UPDATE onboarding_auditevent SET {assignment} WHERE seq = 3"  # noqa: S608


# %s is a stored HMAC with its first character made non-ASCII: compare_digest refuses such str.
@pytest.mark.parametrize("sql", [
    pytest.param(_set("hmac = %s"), id="non-ascii-hmac"),
    pytest.param(_set("at = 'yesterday'"), id="date-that-is-no-date"),  # read back as None
    pytest.param(_set("uuid = 'not-a-uuid'"), id="bad-uuid", marks=sqlite_only),
    pytest.param(_set("integration_uuid = 'zzz'"), id="bad-integration-uuid", marks=sqlite_only),
    pytest.param(_set("at = '2024-02-30 10:00:00'"), id="impossible-date", marks=sqlite_only),
    pytest.param(_set("at = 5"), id="number-for-a-date", marks=sqlite_only),
    pytest.param(_set("actor_id = 'abc'"), id="text-for-a-number", marks=sqlite_only),
    pytest.param(_set("hmac = 7"), id="number-for-the-hmac", marks=sqlite_only),
    pytest.param(_set("hmac = CAST(X'FF' AS TEXT)"), id="not-utf8-hmac", marks=sqlite_only),
    pytest.param(_set("action = CAST(X'FF' AS TEXT)"), id="not-utf8-action", marks=sqlite_only),
])
def test_a_value_the_log_never_writes_is_named_as_altered_not_a_crash(log, sql):
    event = log[2]
    assert event.seq == 3
    raw(sql, ["\u00e9" + event.hmac[1:]] if "%s" in sql else [])
    code, _, message = verify()
    assert code == 1
    assert f"event id {event.pk}" in message
    assert "its content was altered" in message


# Values that make the third row unreadable as an event (SQLite only: PostgreSQL's column types
# refuse them), and values it reads back as no date.
UNREADABLE_ROW = [
    pytest.param(_set("uuid = 'not-a-uuid'"), id="bad-uuid"),
    pytest.param(_set("integration_uuid = 'zzz'"), id="bad-integration-uuid"),
    pytest.param(_set("at = '2024-02-30 10:00:00'"), id="impossible-date"),
    pytest.param(_set("hmac = CAST(X'FF' AS TEXT)"), id="not-utf8-hmac"),
    pytest.param(_set("action = CAST(X'FF' AS TEXT)"), id="not-utf8-action"),
]
NO_DATE = [pytest.param(_set("at = 5"), id="number-for-a-date"),
           pytest.param(_set("at = 'yesterday'"), id="date-that-is-no-date")]


def _csv_rows(client) -> list[dict]:
    body = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _export_lines(client) -> list[dict]:
    body = b"".join(client.get("/audit/export.jsonl").streaming_content)
    return [json.loads(line) for line in body.splitlines()]


@sqlite_only
@pytest.mark.parametrize("sql", UNREADABLE_ROW)
def test_the_log_page_and_exports_name_a_row_that_cannot_be_read_instead_of_failing(
        log, client, auditor, sql):
    tampered = log[2]
    raw(sql)
    client.force_login(auditor)
    page = client.get("/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Row {tampered.pk}:" in html
    assert "cannot be read as an event" in html
    assert "event 1" in html and "event 3" in html  # the readable events around it
    lines = _export_lines(client)
    # Complete, in the chain's order, the unreadable row in its place: re-verifying fails there.
    assert [line["seq"] for line in lines[:EVENTS]] == [1, 2, None, 4, 5]
    assert lines[2]["details"]["unreadable_event_id"] == tampered.pk
    rows = _csv_rows(client)
    assert [row["seq"] for row in rows[:EVENTS]] == ["1", "2", "", "4", "5"]
    assert json.loads(rows[2]["details"])["unreadable_event_id"] == tampered.pk


@sqlite_only
def test_the_admin_sends_auditors_to_the_log_page_for_a_row_that_cannot_be_read(log, client,
                                                                                superuser):
    tampered = log[2]
    raw(_set("uuid = 'not-a-uuid'"))
    client.force_login(superuser)
    for path in ("/admin/onboarding/auditevent/",
                 f"/admin/onboarding/auditevent/{tampered.pk}/change/"):
        response = client.get(path, follow=True)
        assert response.redirect_chain[-1][0] == "/audit/"
        assert "cannot be read: they were changed outside Aisle Keys" in response.content.decode()
    # A readable event's page is shown as usual, and an id that is no number is no 500 ("²"
    # passes str.isdigit()).
    assert client.get(f"/admin/onboarding/auditevent/{log[1].pk}/change/").status_code == 200
    assert client.get("/admin/onboarding/auditevent/%C2%B2/change/").status_code == 302


def test_the_admin_does_not_call_a_bug_tampering(log, client, superuser, monkeypatch):
    from onboarding.admin import AuditEventAdmin

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a row")

    # Not ModelAdmin.changelist_view: the admin's URLs keep the bound view they were built with,
    # so a patch there outlives the test if the URLs are first built during it.
    monkeypatch.setattr(AuditEventAdmin, "get_queryset", broken)
    client.force_login(superuser)
    with pytest.raises(ValueError, match="a bug"):
        client.get("/admin/onboarding/auditevent/")


@sqlite_only
@pytest.mark.parametrize("sql", NO_DATE)
def test_exports_keep_an_event_whose_time_was_typed_over_with_no_date(log, client, auditor, sql):
    raw(sql)
    client.force_login(auditor)
    lines = _export_lines(client)
    assert [line["seq"] for line in lines[:EVENTS]] == [1, 2, 3, 4, 5]
    assert lines[2]["target"] == "event 2"
    assert [row["target"] for row in _csv_rows(client)[:EVENTS]] == [
        f"event {n}" for n in range(EVENTS)]


@pytest.mark.parametrize("sql", [
    pytest.param("UPDATE onboarding_auditchainhead SET seal = %s", id="non-ascii"),
    pytest.param("UPDATE onboarding_auditchainhead SET seal = CAST(X'FF' AS TEXT)",
                 id="not-utf8", marks=sqlite_only),
])
def test_a_chain_head_seal_the_log_never_writes_is_named_as_altered_not_a_crash(log, sql):
    raw(sql, ["\u00e9" * 64] if "%s" in sql else [])
    code, _, message = verify()
    assert code == 1
    assert "chain head was altered" in message


def test_escape_codes_written_into_an_event_are_printed_escaped(log):
    event = log[1]
    raw("UPDATE onboarding_auditevent SET action = %s WHERE id = %s",
        ["check\x1b]0;pwned\x07\x1b[2J", event.pk])
    code, _, message = verify()
    assert code == 1
    assert "\x1b" not in message and "\x07" not in message
    assert "check\\x1b]0;pwned\\x07\\x1b[2J" in message


@pytest.mark.parametrize("index", range(EVENTS))
def test_deleting_any_event_is_detected_and_named(log, index):
    event = log[index]
    raw("DELETE FROM onboarding_auditevent WHERE id = %s", [event.pk])
    code, _, message = verify()
    assert code == 1
    # The first event after the gap is named; deleting the newest names the missing one.
    named = log[index + 1].pk if index + 1 < EVENTS else event.pk
    assert f"event id {named}" in message


@pytest.mark.parametrize("index", range(EVENTS - 1))
def test_reordering_two_events_is_detected_and_named(log, index):
    first, second = log[index], log[index + 1]
    raw("UPDATE onboarding_auditevent SET id = -1 WHERE id = %s", [first.pk])
    raw("UPDATE onboarding_auditevent SET id = %s WHERE id = %s", [first.pk, second.pk])
    raw("UPDATE onboarding_auditevent SET id = %s WHERE id = -1", [second.pk])
    code, _, message = verify()
    assert code == 1
    assert f"event id {first.pk}" in message
    assert "reordered" in message


def test_cutting_off_the_newest_events_and_moving_the_head_back_is_detected(log):
    kept = log[2]
    raw("DELETE FROM onboarding_auditevent WHERE seq > %s", [kept.seq])
    # The head as it stood after `kept`: every value is in the kept event's row.
    raw("UPDATE onboarding_auditchainhead SET events = %s, last_event_id = %s, last_hmac = %s",
        [kept.seq, kept.pk, kept.hmac])
    code, _, message = verify()
    assert code == 1
    assert "chain head was altered" in message


@pytest.mark.parametrize(("head", "reason"), [
    ("DELETE FROM onboarding_auditchainhead", "chain head is missing"),
    ("UPDATE onboarding_auditchainhead SET events = 0, last_event_id = 0, last_hmac = ''",
     "chain head was altered"),  # as it stood before the first event
])
def test_emptying_the_log_is_detected_whatever_is_done_to_its_head(log, head, reason):
    raw("DELETE FROM onboarding_auditevent")
    raw(head)
    code, _, message = verify()
    assert code == 1
    assert reason in message
    assert "None" not in message  # no "event id None" when no event is to blame


@pytest.mark.parametrize("when", ["before the walk reads it", "after the walk"])
def test_an_event_written_while_verifying_is_left_to_the_next_verification(log, monkeypatch,
                                                                            when):
    from onboarding.services import audit as audit_service

    walk = audit_service._chain

    def walk_while_someone_signs_in():
        if when == "before the walk reads it":
            audit_record(action=AuditAction.LOGIN, target="during verification")
        yield from walk()
        if when == "after the walk":
            audit_record(action=AuditAction.LOGIN, target="during verification")

    monkeypatch.setattr(audit_service, "_chain", walk_while_someone_signs_in)
    verdict = audit_verify()
    assert verdict.ok, verdict.reason
    assert verdict.checked == EVENTS
    monkeypatch.undo()
    assert audit_verify().checked == EVENTS + 1


def test_an_event_forged_onto_the_end_past_the_head_is_detected(log):
    # The head is left alone (its seal needs the key): the forged row follows it in position and
    # link, as an event written during the walk would, but its HMAC is made up.
    last = log[-1]
    raw("INSERT INTO onboarding_auditevent (uuid, seq, at, actor_id, actor_name, ip, user_agent,"
        " action, integration_uuid, integration_name, environment, target, details, prev_hmac,"
        " hmac) VALUES (%s, %s, %s, NULL, 'root', NULL, '', 'grant', NULL, '', 'production',"
        " 'grant #1', '{}', %s, %s)",
        [uuid.uuid4().hex, last.seq + 1, last.at, last.hmac, "f" * 64])
    forged = AuditEvent.objects.get(seq=last.seq + 1)
    code, _, message = verify()
    assert code == 1
    assert f"event id {forged.pk}" in message
    assert "altered" in message


def test_an_event_forged_below_the_first_id_is_read_and_detected(log):
    # An id the product never writes (the walk used to start after id 0), placed before the
    # chain's first event; the log pages would show it as any other.
    raw("INSERT INTO onboarding_auditevent (id, uuid, seq, at, actor_id, actor_name, ip,"
        " user_agent, action, integration_uuid, integration_name, environment, target, details,"
        " prev_hmac, hmac) VALUES (-1, %s, 0, %s, NULL, 'root', NULL, '', 'grant', NULL, '',"
        " 'production', 'grant #1', '{}', %s, %s)",
        [uuid.uuid4().hex, log[0].at, "0" * 64, "f" * 64])
    code, _, message = verify()
    assert code == 1
    assert "event id -1 (seq 0" in message


def test_the_walk_reads_every_event_in_order_across_batches(log):
    from onboarding.services.audit import _chain

    assert [e.pk for e in _chain(batch_size=2)] == [e.pk for e in log]


def test_a_new_database_has_a_sealed_head_before_any_event(db):
    assert audit_verify().ok
    code, out, _ = verify()
    assert code == 0 and "intact: 0 events" in out


def test_the_intact_log_prints_its_head_to_keep_elsewhere(log):
    _, out, _ = verify()
    assert f"Head: event {EVENTS}, HMAC {log[-1].hmac}." in out


@postgres_only
def test_postgresql_refuses_to_delete_the_head_or_move_it_back(log):
    for sql in ("DELETE FROM onboarding_auditchainhead",
                "UPDATE onboarding_auditchainhead SET events = events - 1"):
        with (pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(),
              connection.cursor() as cursor):
            cursor.execute(sql)
    assert audit_verify().ok


def test_the_model_refuses_to_change_or_delete_an_event(log):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        log[0].save()
    with pytest.raises(ValidationError):
        log[0].delete()


@postgres_only
def test_postgresql_refuses_update_and_delete_of_audit_rows(log):
    for sql in ("UPDATE onboarding_auditevent SET target = 'x' WHERE id = %s",
                "DELETE FROM onboarding_auditevent WHERE id = %s"):
        with (pytest.raises(DatabaseError, match="append-only"), transaction.atomic(),
              connection.cursor() as cursor):
            cursor.execute(sql, [log[0].pk])
    assert audit_verify().ok


def test_if_the_audit_write_fails_the_package_edit_did_not_happen(sandbox_version,
                                                                  monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("audit table locked")

    monkeypatch.setattr(packages_service, "audit_record", broken)
    with pytest.raises(DatabaseError):
        packages_service.package_store(integration=sandbox_version.package.integration,
                                       environment=Environment.SANDBOX,
                                       data=package_data(client_id="client-changed-0001"))
    assert PackageVersion.objects.count() == 1
    sandbox_version.package.refresh_from_db()
    assert sandbox_version.package.current_version_id == sandbox_version.pk


def test_if_the_audit_write_fails_the_promotion_did_not_happen(sandbox_version, release_manager,
                                                               monkeypatch):
    from onboarding.services import promotion as promotion_service
    from tests.test_promotion import passing_check, promote

    passing_check(sandbox_version)

    def broken(**kwargs):
        raise DatabaseError("audit table locked")

    monkeypatch.setattr(promotion_service, "audit_record", broken)
    with pytest.raises(DatabaseError):
        promote(sandbox_version.package.integration, release_manager)
    assert not PackageVersion.objects.filter(package__environment="production").exists()
    assert not promotion_service.Promotion.objects.exists()


# --- Permission and membership changes ------------------------------------------------------

def test_joining_and_leaving_a_group_is_audited(db):
    user = make_user("newcomer")
    group = Group.objects.get(name="Release managers")
    user.groups.add(group)
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert event.details == {"change": "added", "user": "newcomer",
                             "groups": ["Release managers"]}
    assert event.environment == "production"  # the group carries Production permissions
    group.user_set.remove(user)
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert event.details == {"change": "removed", "group": "Release managers",
                             "users": ["newcomer"]}


def test_clearing_groups_names_the_groups_removed(db):
    user = make_user("newcomer", "Integration leads", "Auditors")
    user.groups.clear()
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert event.details["change"] == "removed"
    assert event.details["groups"] == ["Auditors", "Integration leads"]


def test_user_and_group_permission_changes_are_audited(db):
    user = make_user("newcomer")
    promote = Permission.objects.get(codename="promote_production")
    user.user_permissions.add(promote)
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"change": "added", "user": "newcomer",
                             "permissions": ["onboarding.promote_production"]}
    assert event.environment == "production"
    Group.objects.get(name="Auditors").permissions.remove(
        Permission.objects.get(codename="view_sandbox"))
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"change": "removed", "group": "Auditors",
                             "permissions": ["onboarding.view_sandbox"]}
    assert event.environment == ""


def queries_of(change) -> int:
    with CaptureQueriesContext(connection) as captured:
        change()
    return len(captured)


def test_recording_a_permission_change_costs_the_same_queries_for_2_and_20_permissions(db):
    group = Group.objects.create(name="Custom")
    permissions = list(Permission.objects.order_by("pk")[:22])  # of several apps
    few = queries_of(lambda: group.permissions.add(*permissions[:2]))
    many = queries_of(lambda: group.permissions.add(*permissions[2:22]))
    assert few == many, f"{few} queries for 2 permissions, {many} for 20"
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert sorted(event.details["permissions"]) == sorted(
        f"{p.content_type.app_label}.{p.codename}" for p in permissions[2:22])


def test_recording_a_group_change_costs_the_same_queries_for_2_and_20_groups(db):
    groups = [Group.objects.create(name=f"Team {n:02d}") for n in range(22)]
    groups[21].permissions.add(Permission.objects.get(codename="check_production"))
    user = make_user("newcomer")
    few = queries_of(lambda: user.groups.add(*groups[:2]))
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert event.environment == ""  # neither group holds a Production permission
    many = queries_of(lambda: user.groups.add(*groups[2:22]))
    assert few == many, f"{few} queries for 2 groups, {many} for 20"
    event = AuditEvent.objects.filter(action=AuditAction.GROUP_CHANGE).latest("seq")
    assert len(event.details["groups"]) == 20
    assert event.environment == "production"  # one of them does


def test_becoming_a_superuser_is_audited(db):
    user = make_user("newcomer")
    user.is_superuser = True
    user.save()
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"change": "added", "user": "newcomer",
                             "permissions": ["superuser"]}
    assert audit_verify().ok


# --- The audit page ---------------------------------------------------------------------------

@pytest.fixture
def busy_log(db, lead):
    onboard()
    onboard("Bravo Shop", environment=Environment.PRODUCTION)
    for n in range(60):
        audit_record(action=AuditAction.CHECK, actor=lead, environment="sandbox",
                     target=f"check {n}")


def test_auditors_read_the_log_fifty_events_a_page(client, auditor, busy_log):
    client.force_login(auditor)
    response = client.get("/audit/")
    assert response.status_code == 200
    page = response.context["page"]
    assert len(page.object_list) == 50
    assert page.paginator.num_pages >= 2
    assert client.get("/audit/?page=2").status_code == 200


def test_the_log_filters_by_actor_action_environment_integration_and_date(client, auditor,
                                                                          busy_log):
    client.force_login(auditor)
    assert client.get("/audit/?actor=lead").context["page"].paginator.count == 60
    assert client.get("/audit/?action=package_create&environment=production"
                      ).context["page"].paginator.count == 1
    events = client.get("/audit/?integration=bravo-shop").context["page"].object_list
    assert {e.integration_name for e in events} == {"Bravo Shop"}
    assert client.get("/audit/?since=2000-01-01&until=2000-01-02"
                      ).context["page"].paginator.count == 0


def test_the_log_names_actions_in_words_and_its_exports_keep_the_codes(client, auditor, lead):
    audit_record(action=AuditAction.REVEAL, actor=lead, environment="sandbox", target="secret")
    audit_record(action="retired_action", actor=lead)  # a code no longer defined
    client.force_login(auditor)
    body = client.get("/audit/").content.decode()
    action = '<td role="cell" data-label="Action">'
    env = '<td role="cell" data-label="Environment">'
    assert f"{action}Secret revealed</td>" in body and f"{action}reveal</td>" not in body
    assert f"{env}Sandbox</td>" in body and f"{env}sandbox</td>" not in body
    assert f"{action}retired_action</td>" in body
    csv_body = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    assert ",reveal," in csv_body and "Secret revealed" not in csv_body


def test_every_changed_field_reads_in_words_in_the_details():
    # A saved version lists the fields it changed; the config fields read like the credentials.
    from onboarding.services.audit import audit_details_words

    assert (audit_details_words({"changed": ["client_id", "response_format", "notes"]})
            == "changed: client ID, response format, notes")


def test_a_bad_date_range_is_a_clear_message_not_an_error(client, auditor, busy_log):
    client.force_login(auditor)
    response = client.get("/audit/?since=2026-02-02&until=2026-01-01")
    assert response.status_code == 400
    assert b"before the start date" in response.content
    assert client.get("/audit/?since=not-a-date").status_code == 400
    # The filter was not applied: the page says so rather than "0 events" and downloads.
    body = response.content.decode()
    assert "Nothing is listed until the filter above is corrected." in body
    assert "No events match" not in body and "Download CSV" not in body


@pytest.mark.parametrize(("who", "status"), [("lead", 403), ("release_manager", 403),
                                              ("outsider", 404), ("superuser", 200)])
def test_only_auditors_and_superusers_see_the_log(db, client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/audit/").status_code == status
    assert client.get("/audit/export.csv").status_code == status


def test_exports_hold_every_matching_event_and_are_audited(client, auditor, busy_log):
    client.force_login(auditor)
    response = client.get("/audit/export.jsonl?actor=lead")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(lines) == 60
    assert [row["seq"] for row in lines] == sorted(row["seq"] for row in lines)
    assert set(lines[0]) >= {"seq", "at", "actor_name", "action", "details", "hmac", "ip"}
    csv_body = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    assert csv_body.splitlines()[0].startswith("seq,at,actor_id")
    exports = AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORT).order_by("seq")
    assert [e.details["format"] for e in exports] == ["jsonl", "csv"]
    assert exports[0].details["filters"] == {"actor": "lead"}


def test_no_event_export_or_page_of_the_log_holds_a_secret(client, superuser, lead,
                                                           sandbox_version):
    # Reveal and export first, so the log records every kind of secret access.
    client.force_login(lead)
    package = sandbox_version.package
    client.post(f"/packages/{package.uuid}/reveal/secret/",
                {"field": "password", "confirm_password": "unused-in-tests-1234"})
    client.post(f"/packages/{package.uuid}/reveal/postman/")
    client.force_login(superuser)
    bodies = [client.get("/audit/").content, client.get("/access/").content,
              b"".join(client.get("/audit/export.csv").streaming_content),
              b"".join(client.get("/audit/export.jsonl").streaming_content),
              client.get("/admin/onboarding/auditevent/").content]
    bodies += [json.dumps([e.target, e.details]).encode() for e in AuditEvent.objects.all()]
    for body in bodies:
        assert KNOWN_SECRET.encode() not in body
        assert KNOWN_PASSWORD.encode() not in body
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_the_csv_export_defuses_spreadsheet_formulas_typed_at_sign_in(client, auditor):
    client.post("/accounts/login/", {"username": "=1+cmd|calc", "password": "x"})
    client.force_login(auditor)
    body = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    assert ",'=1+cmd|calc," in body
    assert ",=1+cmd|calc," not in body


def test_deactivating_and_reactivating_an_account_is_audited(release_manager):
    release_manager.is_active = False
    release_manager.save()
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "release", "change": "deactivated"}
    release_manager.is_active = True
    release_manager.save(update_fields=["is_active"])
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "release", "change": "activated"}
    count = AuditEvent.objects.count()
    release_manager.save(update_fields=["last_login"])
    assert AuditEvent.objects.count() == count


def test_giving_and_taking_staff_status_is_audited_under_production_for_a_promoter(
        release_manager, lead):
    # Staff status opens the admin, where promotion is done: for a release manager it is what
    # lets them promote, and it was changed without a trace.
    release_manager.is_staff = False
    release_manager.save()
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "release", "change": "removed", "permissions": ["staff"]}
    assert event.environment == Environment.PRODUCTION
    lead.is_staff = True
    lead.save(update_fields=["is_staff"])
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "lead", "change": "added", "permissions": ["staff"]}
    assert event.environment == Environment.PRODUCTION  # leads view Production
    count = AuditEvent.objects.count()
    lead.save()
    assert AuditEvent.objects.count() == count


def test_renaming_an_account_is_audited_with_its_old_name(release_manager, lead):
    # Events name the account as it was called then: without this, the actions of "release"
    # could not be told as those of the account now called "release-2".
    release_manager.username = "release-2"
    release_manager.save()
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "release-2", "change": "renamed", "from": "release"}
    assert event.target == "release-2" and event.environment == Environment.PRODUCTION
    lead.username = "lead-2"
    lead.save(update_fields=["username"])
    event = AuditEvent.objects.filter(action=AuditAction.PERMISSION_CHANGE).latest("seq")
    assert event.details == {"user": "lead-2", "change": "renamed", "from": "lead"}
    count = AuditEvent.objects.count()
    lead.save()  # the same name: nothing to record
    make_user("newcomer")  # a new account is no rename
    assert AuditEvent.objects.count() == count
    assert audit_verify().ok


# --- Deleting accounts and groups ---------------------------------------------------------------

def test_deleting_an_account_is_audited_with_the_production_roles_it_took_away(release_manager,
                                                                                lead):
    release_manager.delete()
    event = AuditEvent.objects.latest("seq")
    assert event.action == AuditAction.PERMISSION_CHANGE and event.target == "release"
    assert event.details["change"] == "deleted"
    assert "promote" in event.details["production_roles"]
    assert event.environment == "production"
    lead.delete()
    event = AuditEvent.objects.latest("seq")
    assert event.details == {"user": "lead", "change": "deleted", "production_roles": ["view"]}


def test_deleting_a_group_is_audited_with_its_members_and_permissions(release_manager):
    group = Group.objects.get(name="Release managers")
    group.delete()
    event = AuditEvent.objects.latest("seq")
    assert event.action == AuditAction.GROUP_CHANGE and event.target == "Release managers"
    assert event.details["change"] == "deleted" and event.details["users"] == ["release"]
    assert "onboarding.promote_production" in event.details["permissions"]
    assert event.environment == "production"
    assert audit_verify().ok
