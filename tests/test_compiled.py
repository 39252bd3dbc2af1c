"""Queries compiled once and run with new values (onboarding/compiled.py): each of the project's
CompiledQuery answers as the ORM does, and each CompiledUpdate changes what the ORM's update
changes, from compiled SQL, with each run's own values; a shape whose values cannot be swapped
in runs through the ORM instead."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from onboarding import backends
from onboarding.compiled import MAX_SHAPES, CompiledQuery, CompiledUpdate, _Compiled
from onboarding.models import (
    AccessGrant,
    AuditChainHead,
    CheckTrigger,
    ConnectivityCheck,
    Integration,
    OnboardingPackage,
    Role,
)
from onboarding.services import access, audit, checks, status
from onboarding.services.audit import AuditAction, audit_record, audit_verify
from onboarding.services.checks import check_run
from onboarding.services.grants import grant_create, grant_revoke
from tests.conftest import make_user, onboard

pytestmark = pytest.mark.django_db


def orm_and_compiled(query: CompiledQuery, **values) -> tuple[list, list]:
    # The build function is the ORM's own query for these values.
    return sorted(query._build(**values), key=repr), sorted(query.rows(**values), key=repr)


def test_the_stamps_answer_as_the_orm_from_compiled_sql(sandbox_simulator):
    checked = onboard("Checked").package
    check_run(package=checked, fetch_me=False)  # a token, a refresh token, a last exchange
    failing = onboard("Failing", client_secret="wrong-secret-0123456789").package
    check_run(package=failing, fetch_me=False)  # failing_since set
    untouched = onboard("Untouched").package
    ids = [checked.integration_id, failing.integration_id, untouched.integration_id]

    orm, compiled = orm_and_compiled(status._stamps, ids=ids)
    assert compiled == orm
    assert {row[2] for row in compiled} == {checked.pk, failing.pk, untouched.pk}
    # The same types as the ORM's (the overview's cache key is made of them).
    assert [tuple(map(type, row)) for row in compiled] == [tuple(map(type, row)) for row in orm]
    assert status._stamps.compiled(ids=ids)


def test_a_second_run_swaps_in_its_own_values():
    one, two, three = (onboard(name).package for name in ("One", "Two", "Three"))
    first = status.package_stamps(integration_ids=[one.integration_id, two.integration_id])
    again = status.package_stamps(integration_ids=[three.integration_id, one.integration_id])
    assert {row[2] for row in first} == {one.pk, two.pk}
    assert {row[2] for row in again} == {three.pk, one.pk}
    assert status._stamps.compiled(ids=[1, 2])


def test_an_id_listed_twice_is_asked_once():
    package = onboard().package
    rows = status.package_stamps(integration_ids=[package.integration_id] * 3)
    assert [row[2] for row in rows] == [package.pk]


def test_a_users_permissions_answer_as_the_orm_from_compiled_sql():
    user = make_user("both", "Integration leads", "Auditors")
    user.user_permissions.add(Permission.objects.get(codename="check_production"))
    orm, compiled = orm_and_compiled(backends._users_permissions, user_id=user.pk)
    assert compiled == orm
    assert ("onboarding", "check_production") in compiled  # the user's own
    assert ("onboarding", "view_auditevent") in compiled  # through a group
    assert backends._users_permissions.compiled(user_id=user.pk)
    other = make_user("nobody")
    assert backends._users_permissions.rows(user_id=other.pk) == []


def test_a_users_live_grants_answer_as_the_orm_from_compiled_sql(outsider, superuser):
    now = timezone.now()
    live = grant_create(user=outsider, role=Role.CHECK, valid_until=now + timedelta(days=1),
                        reason="on call", granted_by=superuser)
    revoked = grant_create(user=outsider, role=Role.VIEW, valid_until=now + timedelta(days=1),
                           reason="revoked", granted_by=superuser)
    grant_revoke(grant=revoked, revoked_by=superuser)
    AccessGrant.objects.create(user=outsider, role=Role.EDIT, reason="ended",
                               valid_until=now - timedelta(hours=1), granted_by=superuser)
    orm, compiled = orm_and_compiled(access._users_live_grants, user_id=outsider.pk, now=now)
    assert compiled == orm
    assert [row[0] for row in compiled] == [live.pk]
    assert access._users_live_grants.compiled(user_id=outsider.pk, now=now)
    # The time is swapped in too: two days on, the grant has ended.
    assert access._users_live_grants.rows(user_id=outsider.pk,
                                          now=now + timedelta(days=2)) == []
    # active_grants builds the model instances from the rows.
    grants = access.active_grants(user=type(outsider).objects.get(pk=outsider.pk))
    assert [(g.pk, g.role, g.valid_until, g._state.adding) for g in grants] == [
        (live.pk, Role.CHECK, live.valid_until, False)]


def test_a_run_is_one_query():
    package = onboard().package
    status.package_stamps(integration_ids=[package.integration_id])  # compiled
    with CaptureQueriesContext(connection) as captured:
        status.package_stamps(integration_ids=[package.integration_id])
    assert len(captured) == 1


def test_a_value_folded_into_the_sql_runs_through_the_orm_every_time():
    onboard()
    # RawSQL writes the value into the SQL's text: no parameter to swap it in.
    folded = CompiledQuery(lambda *, n: Integration.objects.annotate(
        n=RawSQL(f"{int(n)} + 0", ())).values_list("n"))  # noqa: S611 (an int)
    assert folded.rows(n=5) == [(5,)]
    assert folded.rows(n=7) == [(7,)]
    assert not folded.compiled(n=7)


def test_an_empty_list_answers_nothing():
    onboard()
    query = CompiledQuery(lambda *, ids: Integration.objects.filter(pk__in=ids).values_list("pk"))
    assert query.rows(ids=[]) == []
    assert not query.compiled(ids=[])  # Django answers an empty IN without asking


def test_only_a_values_list_can_be_compiled():
    with pytest.raises(TypeError, match="values_list"):
        CompiledQuery(lambda *, n: Integration.objects.filter(pk=n)).rows(n=1)


def test_threads_never_share_compiled_sql():
    """Compiling a query adjusts its aliases in place: each thread (gthread workers) compiles
    its own."""
    query = CompiledQuery(lambda *, n: Integration.objects.filter(pk=n).values_list("pk"))
    assert query.compiled(n=1)
    own = query._shapes()
    seen = []

    def other_thread() -> None:
        try:
            seen.append(query._shapes())
        finally:
            connection.close()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen == [{}] and own


def test_shapes_kept_are_bounded():
    query = CompiledQuery(lambda *, ids: Integration.objects.filter(pk__in=ids).values_list("pk"))
    for length in range(1, MAX_SHAPES + 10):
        query.rows(ids=list(range(1, length + 1)))
    assert len(query._shapes()) == MAX_SHAPES
    assert query.rows(ids=list(range(1, MAX_SHAPES + 20))) == []  # still answers, uncached


def test_the_overviews_page_of_integrations_answers_as_the_orm_page_by_page():
    from dashboard.overview_page import _every_integration

    for name in ("Gamma", "Alpha", "Beta"):
        onboard(name)
    pages = []
    for offset in (0, 2, 4):
        compiled = _every_integration.rows(offset=offset, limit=2)
        assert compiled == list(_every_integration._build(offset=offset, limit=2))  # in order
        pages.append([name for _pk, _uuid, name in compiled])
    assert pages == [["Alpha", "Beta"], ["Gamma"], []]
    # The offset and limit are written into the SQL: one compiled SQL each.
    assert _every_integration.compiled(offset=2, limit=2)
    assert _every_integration.rows(offset=0, limit=1) == list(
        _every_integration._build(offset=0, limit=1))


def test_columns_the_sql_needs_but_the_caller_did_not_ask_for_are_cut_off():
    onboard("B")
    onboard("A")
    # DISTINCT ordered by a column outside the values: the SQL selects that column too.
    query = CompiledQuery(lambda *, n: Integration.objects.filter(pk__gte=n).order_by(
        "slug").distinct().values_list("name"))
    assert query.rows(n=0) == list(query._build(n=0)) == [("A",), ("B",)]
    assert query.compiled(n=0)


@pytest.mark.parametrize("value", [
    True,  # a bool is no id
    "12",  # a text is no list of ids
    [1, "2"],
    {1, 2},  # a set has no order to put its ids in
    timezone.now().replace(tzinfo=None),  # naive: the ORM would read it as local time
])
def test_a_value_the_orm_would_prepare_differently_is_refused(value):
    query = CompiledQuery(lambda *, v: Integration.objects.filter(pk=1).values_list("pk"))
    with pytest.raises(TypeError, match="CompiledQuery takes"):
        query.rows(v=value)


# --- CompiledUpdate ---------------------------------------------------------------------------


def orm_then_compiled(update: CompiledUpdate, model, pk: int, **values) -> tuple[tuple, tuple]:
    """(rows updated, the row after) of the ORM's own update, undone, then of the compiled one."""
    queryset, changes = update._build(**values)
    with transaction.atomic():
        orm = queryset.update(**changes), model.objects.filter(pk=pk).values().get()
        transaction.set_rollback(True)
    compiled = update.run(**values), model.objects.filter(pk=pk).values().get()
    assert update.compiled(**values)
    return orm, compiled


def test_the_check_claim_changes_what_the_orm_changes():
    package = onboard().package
    now = timezone.now()
    until = now + timedelta(minutes=1)
    for _ in range(2):  # free, then held: the second claim changes nothing
        orm, compiled = orm_then_compiled(checks._claim_update, OnboardingPackage, package.pk,
                                          package_id=package.pk, until=until, free_at=now)
        assert compiled == orm
    assert compiled[0] == 0
    # Taking over compares the claim's end exactly.
    later = until + timedelta(seconds=5)
    for held, rows in ((now, 0), (until, 1)):
        orm, compiled = orm_then_compiled(checks._claim_update, OnboardingPackage, package.pk,
                                          package_id=package.pk, until=later, held_until=held)
        assert compiled == orm and compiled[0] == rows
    assert OnboardingPackage.objects.get(pk=package.pk).check_busy_until == later


@pytest.mark.parametrize("failing", ["passed", "failed", "unknown"])
def test_the_package_row_after_a_check_changes_as_the_orm_changes_it(failing):
    package = onboard().package
    before = timezone.now() - timedelta(days=1)
    OnboardingPackage.objects.filter(pk=package.pk).update(failing_since=before)
    values = {"package_id": package.pk, "failing": failing,
              "busy_until": timezone.now() + timedelta(seconds=2)}
    if failing == "failed":
        values["failed_at"] = timezone.now()
    orm, compiled = orm_then_compiled(checks._package_row, OnboardingPackage, package.pk,
                                      **values)
    assert compiled == orm
    expected = {"passed": None, "failed": before, "unknown": before}[failing]  # kept: the first
    assert compiled[1]["failing_since"] == expected


def test_a_first_failure_is_the_time_it_failed_since():
    package = onboard().package
    failed_at = timezone.now() - timedelta(minutes=3)
    orm, compiled = orm_then_compiled(checks._package_row, OnboardingPackage, package.pk,
                                      package_id=package.pk, failing="failed",
                                      failed_at=failed_at)
    assert compiled == orm and compiled[1]["failing_since"] == failed_at


def test_dropping_the_other_checks_tokens_changes_what_the_orm_changes(sandbox_simulator):
    package = onboard().package
    older = check_run(package=package, fetch_me=False)
    OnboardingPackage.objects.filter(pk=package.pk).update(check_busy_until=None)
    newer = check_run(package=package, fetch_me=False)
    # As if both still held tokens (the newer check dropped the older one's).
    ConnectivityCheck.objects.filter(pk=older.pk).update(
        access_token=ConnectivityCheck.objects.get(pk=newer.pk).__dict__["access_token"])
    for tokens in (("refresh_token",), ("access_token", "refresh_token")):
        orm, compiled = orm_then_compiled(checks._drop_tokens, ConnectivityCheck, older.pk,
                                          package_id=package.pk, keep_id=newer.pk,
                                          tokens=tokens)
        assert compiled == orm
    assert compiled[0] == 1 and compiled[1]["access_token"] is None
    kept = ConnectivityCheck.objects.get(pk=newer.pk)
    assert kept.access_token and kept.refresh_token  # the one to keep was not touched


def test_moving_the_audit_head_changes_what_the_orm_changes():
    audit_record(action=AuditAction.LOGIN)
    head = AuditChainHead.objects.get(id=1)
    values = audit.head_values(events=head.events + 5, last_event_id=head.last_event_id + 5,
                               last_hmac="f" * 64)
    orm, compiled = orm_then_compiled(audit._head_moved, AuditChainHead, 1, **values)
    assert compiled == orm
    assert compiled[1]["last_hmac"] == "f" * 64 and compiled[1]["seal"] == values["seal"]


def test_a_checks_statements_run_from_compiled_sql(sandbox_simulator, monkeypatch):
    """The check's reads and UPDATEs, and the audit head's, passing and failing; the audit chain
    they write stays whole."""
    statements = [checks._current_version, checks._claim_update, checks._drop_tokens,
                  checks._package_row, audit._locked_head, audit._head_moved]
    for statement in statements:  # none compiled yet in this thread
        monkeypatch.setattr(statement, "_local", threading.local())
    passing = onboard("Passing").package
    failing = onboard("Failing", client_secret="wrong-secret-0123456789").package
    assert check_run(package=passing, fetch_me=False, trigger=CheckTrigger.DASHBOARD).ok
    assert not check_run(package=failing, fetch_me=False, trigger=CheckTrigger.DASHBOARD).ok
    for statement in statements:
        shapes = statement._shapes()
        assert shapes and all(isinstance(found, _Compiled) for found in shapes.values())
    assert len(checks._package_row._shapes()) == 2  # passed, failed
    # The shapes a check did not need here: taking over a claim, a refused refresh token.
    now = timezone.now()
    assert checks._claim_update.compiled(package_id=passing.pk, until=now, held_until=now)
    assert checks._drop_tokens.compiled(package_id=passing.pk, keep_id=1,
                                        tokens=("refresh_token",))
    assert checks._package_row.compiled(package_id=passing.pk, failing="unknown",
                                        busy_until=now)
    assert audit_verify().ok


def test_the_current_version_is_read_as_the_orm_reads_it():
    first = onboard()
    package = first.package
    second = onboard(client_secret="a-second-secret-0123")  # the same package, a new version
    assert second.package_id == package.pk and second.pk != first.pk
    version = checks._version_now(package)  # the package object still names the first
    orm = OnboardingPackage.objects.select_related("current_version").get(
        pk=package.pk).current_version
    fields = [field.attname for field in type(orm)._meta.concrete_fields]
    assert [getattr(version, name) for name in fields] == [getattr(orm, name) for name in fields]
    assert version.pk == second.pk and version.client_secret == "a-second-secret-0123"
    assert not version._state.adding


def test_a_package_without_a_version_reads_none():
    package = onboard().package
    OnboardingPackage.objects.filter(pk=package.pk).update(current_version=None)
    assert checks._version_now(package) is None


def test_a_missing_audit_head_is_made_again():
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's trigger refuses to delete the head")
    AuditChainHead.objects.all().delete()
    event = audit_record(action=AuditAction.LOGIN)
    assert AuditChainHead.objects.get(id=1).last_event_id == event.pk


def test_a_text_the_orm_transforms_runs_through_the_orm_every_time():
    onboard("Acme POS")
    onboard("Beta Shop")
    rename = CompiledUpdate(lambda *, part, name: (
        Integration.objects.filter(name__contains=part), {"notes": name}))
    assert rename.run(part="Acme", name="one") == 1
    assert rename.run(part="Shop", name="two") == 1
    assert not rename.compiled(part="Shop", name="two")  # "%Shop%": not the stand-in
    assert dict(Integration.objects.values_list("name", "notes")) == {
        "Acme POS": "one", "Beta Shop": "two"}


def test_an_update_that_fails_inside_atomic_rolls_the_block_back():
    one, two = onboard("One").package, onboard("Two").package
    # Two packages of one integration and environment: the unique constraint refuses it.
    move = CompiledUpdate(lambda *, pk, integration_id: (
        OnboardingPackage.objects.filter(pk=pk), {"integration_id": integration_id}))
    assert move.compiled(pk=one.pk, integration_id=two.integration_id)
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            move.run(pk=one.pk, integration_id=two.integration_id)
        assert connection.needs_rollback  # as after the ORM's update: nothing more runs here


def test_nothing_to_set_updates_nothing_without_asking():
    package = onboard().package
    nothing = CompiledUpdate(lambda *, pk: (OnboardingPackage.objects.filter(pk=pk), {}))
    with CaptureQueriesContext(connection) as captured:
        assert nothing.run(pk=package.pk) == 0
    assert len(captured) == 0


def test_only_an_unsliced_queryset_can_be_updated():
    sliced = CompiledUpdate(lambda *, pk: (Integration.objects.filter(pk__gte=pk)[:1],
                                           {"notes": "x"}))
    with pytest.raises(TypeError, match="unsliced"):
        sliced.run(pk=1)


@pytest.mark.parametrize("value", [
    True,
    None,  # NULL is no parameter: a literal, or a value of the build function
    {1, 2},
    timezone.now().replace(tzinfo=None),
])
def test_a_value_the_orm_would_prepare_differently_is_refused_by_updates(value):
    update = CompiledUpdate(lambda *, v: (Integration.objects.filter(pk=1), {"notes": "x"}))
    with pytest.raises(TypeError, match="CompiledUpdate takes"):
        update.run(v=value)


def test_an_update_binds_the_parameters_the_orm_binds():
    """The same values of the same types (on PostgreSQL, a number to set is an Int8 or an
    Int2: Django types them so that every run binds the same parameter types)."""
    package = onboard().package
    now = timezone.now()
    later = now + timedelta(seconds=3)  # two times, so that a swap of the two shows
    runs = [
        (audit._head_moved, audit.head_values(events=7, last_event_id=9, last_hmac="c" * 64)),
        (checks._package_row, {"package_id": package.pk, "failing": "failed", "failed_at": now,
                               "busy_until": later}),
        (checks._claim_update, {"package_id": package.pk, "until": later, "held_until": now}),
        (checks._drop_tokens, {"package_id": package.pk, "keep_id": 3,
                               "tokens": checks._TOKENS}),
    ]
    for update, values in runs:
        compiled = update._find(values)
        bound = update._params(compiled, values)
        _sql, orm_params, _compiler = update._sql(values)  # compiled from these very values
        assert [(type(p), p) for p in bound] == [(type(p), p) for p in orm_params]


def test_the_overviews_count_of_integrations_answers_as_the_orm_none_included():
    from dashboard.overview_page import _every_integration_count

    assert _every_integration_count.rows() == [(0,)]  # one row, even of an empty table
    for name in ("One", "Two", "Three"):
        onboard(name)
    assert _every_integration_count.rows() == [(Integration.objects.count(),)] == [(3,)]
    assert _every_integration_count.compiled()
    # COUNT(*), as count() asks: SQLite answers it without reading the rows, not COUNT("id").
    assert "COUNT(*)" in _every_integration_count._find({}).sql


def test_the_locked_audit_head_is_read_as_the_orm_reads_it():
    audit_record(action=AuditAction.LOGIN)
    with transaction.atomic():
        head = audit._head_locked()
    orm = AuditChainHead.objects.get(id=1)
    names = [field.attname for field in AuditChainHead._meta.concrete_fields]
    assert [getattr(head, name) for name in names] == [getattr(orm, name) for name in names]
    assert head.events >= 1 and head.last_hmac and not head._state.adding


def test_an_id_beyond_64_bits_matches_nothing_as_with_the_orm():
    """No column holds it; Django answers without asking, where binding it fails on SQLite."""
    onboard()
    huge = 2**63
    assert checks._claim_update.run(package_id=huge, until=timezone.now(),
                                    free_at=timezone.now()) == 0
    with pytest.raises(OnboardingPackage.DoesNotExist):
        checks._version_now(OnboardingPackage(pk=huge))
    assert not checks._claim_update.compiled(package_id=huge, until=timezone.now(),
                                             free_at=timezone.now())
