"""Scheduled checks (`run_checks`) against the local simulator over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from onboarding.iqmetrix import Outcome
from onboarding.models import (
    AuditEvent,
    CheckTrigger,
    ConnectivityCheck,
    OnboardingPackage,
    PackageVersion,
)
from onboarding.services import checks as checks_service
from onboarding.services.schedule import (
    RoundReport,
    schedule_candidates,
    schedule_round,
    schedule_slot,
)
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard
from tests.manage_subprocess import (  # noqa: F401 (fixtures)
    REPO_ROOT,
    _migrated_template,
    manage,
    sqlite_child,
)

HOUR = timedelta(hours=1)
# The in-memory SQLite test database locks whole tables between connections ("database table is
# locked") instead of waiting, so on SQLite the rounds here use one worker thread; a SQLite file,
# as deployed, waits for its lock (the benchmark runs 10 threads on one). PostgreSQL gets three.
THREADS = 3 if connection.vendor == "postgresql" else 1

pytestmark = pytest.mark.django_db(transaction=True)  # worker threads need committed rows


@pytest.fixture(autouse=True)
def _no_dedupe(monkeypatch):
    # Rounds in one test follow each other within the check service's double-click grace period.
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)


def good_packages(count: int) -> list[OnboardingPackage]:
    return [onboard(f"Integration {n:02d}").package for n in range(count)]


def checks_per_package() -> dict[int, int]:
    counts: dict[int, int] = {}
    for package_id in ConnectivityCheck.objects.values_list("package_id", flat=True):
        counts[package_id] = counts.get(package_id, 0) + 1
    return counts


def this_slot() -> datetime:
    return schedule_slot(now=timezone.now(), interval=HOUR)


def test_slots_start_on_multiples_of_the_interval_so_all_workers_agree():
    now = datetime(2026, 11, 27, 21, 47, 13, tzinfo=UTC)
    assert schedule_slot(now=now, interval=HOUR) == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert schedule_slot(now=now, interval=timedelta(minutes=15)) == now.replace(minute=45,
                                                                                  second=0)


def test_one_round_checks_each_package_with_credentials_once(sandbox_simulator):
    packages = good_packages(5)
    empty = onboard("No secrets yet", client_secret=None, password=None).package
    assert empty not in schedule_candidates()

    report = schedule_round(slot_start=this_slot(), concurrency=THREADS)

    assert (report.checked, report.ok, report.failed, report.claimed_elsewhere) == (5, 5, 0, 0)
    assert checks_per_package() == {p.pk: 1 for p in packages}
    assert sandbox_simulator.token_requests == 5
    scheduled = ConnectivityCheck.objects.all()
    assert {c.trigger for c in scheduled} == {CheckTrigger.SCHEDULED}
    assert {c.requested_by_id for c in scheduled} == {None}
    assert AuditEvent.objects.filter(action="check", actor_name="system").count() == 5
    assert all(p.last_scheduled_at is not None for p in OnboardingPackage.objects.exclude(
        pk=empty.pk))


def test_without_update_returning_packages_are_claimed_one_by_one(sandbox_simulator,
                                                                  monkeypatch):
    from onboarding.services import schedule

    monkeypatch.setattr(schedule, "_can_return_updated_rows", lambda: False)
    packages = good_packages(4)
    slot = this_slot()
    assert schedule.schedule_claim(package_ids=[packages[0].pk], slot_start=slot) == {
        packages[0].pk}
    report = schedule_round(slot_start=slot, concurrency=THREADS)
    assert (report.checked, report.claimed_elsewhere) == (3, 1)
    assert checks_per_package() == {p.pk: 1 for p in packages[1:]}


def test_a_second_round_in_the_same_slot_checks_nothing_again(sandbox_simulator):
    good_packages(3)
    schedule_round(slot_start=this_slot(), concurrency=THREADS)
    again = schedule_round(slot_start=this_slot(), concurrency=THREADS)
    assert (again.checked, again.claimed_elsewhere) == (0, 3)
    assert sandbox_simulator.token_requests == 3


def test_the_next_slot_checks_every_package_again(sandbox_simulator):
    packages = good_packages(2)
    slot = this_slot()
    schedule_round(slot_start=slot, concurrency=THREADS)
    report = schedule_round(slot_start=slot + HOUR, concurrency=THREADS)
    assert report.checked == 2
    assert checks_per_package() == {p.pk: 2 for p in packages}


def test_a_failing_package_gets_failing_since_and_keeps_it_until_a_check_passes(
        sandbox_simulator):
    package = onboard("Broken POS", password="not-the-password").package
    slot = this_slot()
    first = schedule_round(slot_start=slot, concurrency=1)
    assert (first.checked, first.failed) == (1, 1)
    failed = ConnectivityCheck.objects.get()
    assert failed.outcome == Outcome.INVALID_CREDENTIALS
    package.refresh_from_db()
    assert package.failing_since == failed.sent_at

    schedule_round(slot_start=slot + HOUR, concurrency=1)
    package.refresh_from_db()
    assert package.failing_since == failed.sent_at  # since the first failure, not the latest

    onboard("Broken POS", password=KNOWN_PASSWORD)
    fixed = schedule_round(slot_start=slot + 2 * HOUR, concurrency=1)
    assert fixed.ok == 1
    package.refresh_from_db()
    assert package.failing_since is None


def test_the_overview_shows_since_when_a_scheduled_check_has_been_failing(
        sandbox_simulator, client, superuser):
    # A superuser: the flush after each transactional test removes the migrations' groups.
    onboard("Broken POS", password="not-the-password")
    schedule_round(slot_start=this_slot(), concurrency=1)
    since = OnboardingPackage.objects.get().failing_since
    client.force_login(superuser)
    page = client.get("/").content.decode()
    assert "Failing</strong> since" in page
    assert timezone.localtime(since).strftime("%Y-%m-%d %H:%M") in page


def test_undecryptable_credentials_are_reported_and_the_round_goes_on(sandbox_simulator):
    good, broken = good_packages(2)
    # A ciphertext from another row does not decrypt here (it is bound to its own row).
    other = onboard("Donor").package.current_version
    raw = PackageVersion._meta.get_field("password").stored_value(other)
    PackageVersion.objects.filter(pk=broken.current_version_id).update(password=raw)

    report = schedule_round(slot_start=this_slot(), concurrency=THREADS)

    assert report.checked == 2  # the good one and the donor
    assert len(report.not_checked) == 1
    assert "cannot be decrypted" in report.not_checked[0]
    assert "Integration 01" in report.not_checked[0]
    assert checks_per_package().get(good.pk) == 1


def _run_concurrently(slot: datetime, runners: int) -> list[RoundReport]:
    reports: list[RoundReport] = []
    barrier = threading.Barrier(runners)

    def runner() -> None:
        barrier.wait()
        try:
            reports.append(schedule_round(slot_start=slot, concurrency=THREADS))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_two_concurrent_runners_never_check_a_package_twice_in_one_round(sandbox_simulator):
    sandbox_simulator.latency_ms = 30
    packages = good_packages(12)

    reports = _run_concurrently(this_slot(), runners=2)

    assert len(reports) == 2
    assert checks_per_package() == {p.pk: 1 for p in packages}
    assert sandbox_simulator.token_requests == 12
    assert sum(r.checked for r in reports) == 12
    assert sum(r.claimed_elsewhere for r in reports) == 12
    assert all(r.checked for r in reports), "both runners should have shared the work"


def test_the_command_prints_one_summary_line_per_round(sandbox_simulator, capsys):
    good_packages(2)
    call_command("run_checks", "--concurrency", str(THREADS))
    out = capsys.readouterr().out
    assert "checked 2 (ok 2, failed 0), skipped 0 claimed elsewhere" in out


def test_the_command_fails_with_exit_1_when_a_check_fails(sandbox_simulator, capsys):
    onboard("Broken POS", password="not-the-password")
    with pytest.raises(CommandError) as raised:
        call_command("run_checks")
    assert raised.value.returncode == 1
    assert "checked 1 (ok 0, failed 1)" in capsys.readouterr().out


def seed_child(env: dict[str, str], count: int) -> None:
    """`count` good Sandbox packages in a child's database (its keys, its file)."""
    script = f"""
from onboarding.services.packages import PackageData, package_onboard
for n in range({count}):
    package_onboard(integration_name=f"Child {{n}}", environment="sandbox",
                    data=PackageData(client_id="client-abcdef123456",
                                     username="api.user@example.com",
                                     client_secret={KNOWN_SECRET!r}, password={KNOWN_PASSWORD!r}))
"""
    seeded = manage("shell", "-c", script, env=env)
    assert seeded.returncode == 0, seeded.stderr


def loop_in_its_round(env: dict[str, str], simulator, *,
                      command: list[str] | None = None, **popen: Any) -> subprocess.Popen:
    """`run_checks --loop`, one check at a time (or `command`), once its first round has begun."""
    child = subprocess.Popen(
        command or [sys.executable, "manage.py", "run_checks", "--loop", "--interval", "3600",
                    "--concurrency", "1"],
        cwd=REPO_ROOT, env={**env, "IQMETRIX_SANDBOX_ACCOUNTS_URL": simulator.url},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **popen,
    )
    deadline = time.monotonic() + 30
    while simulator.token_requests == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if simulator.token_requests == 0:
        child.kill()
        raise AssertionError("the round never started")
    return child


def test_sigterm_lets_the_loop_finish_the_round_in_hand_then_exit_0(sandbox_simulator,
                                                                     sqlite_child):  # noqa: F811
    _path, env = sqlite_child
    seed_child(env, 3)
    sandbox_simulator.latency_ms = 300  # three checks one at a time: about a second
    child = loop_in_its_round(env, sandbox_simulator)
    try:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert "checked 3 (ok 3, failed 0)" in out
    assert out.rstrip().endswith("run_checks: stopped.")
    assert "stopping after the round in hand" in err
    assert sandbox_simulator.token_requests == 3


def procfile_command(name: str) -> str:
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        process, colon, command = line.partition(":")
        if colon and process.strip() == name:
            return command.strip()
    raise AssertionError(f"the Procfile declares no {name!r} process")


def test_the_procfile_checks_process_finishes_its_round_and_exits_0_on_sigterm(
        sandbox_simulator, sqlite_child):  # noqa: F811
    # honcho, foreman and Heroku run a Procfile line with `sh -c` and signal its process group.
    # A shell left between them and run_checks dies of the SIGTERM (exit 143) while run_checks
    # is still finishing the round, so the platform sees a killed process, not a clean stop.
    _path, env = sqlite_child
    seed_child(env, 3)
    sandbox_simulator.latency_ms = 1000  # the round is still in hand when the signal comes
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    child = loop_in_its_round(env, sandbox_simulator,
                              command=["/bin/sh", "-c", procfile_command("checks")],
                              start_new_session=True)
    try:
        os.killpg(child.pid, signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 0, err
    assert "checked 3 (ok 3, failed 0)" in out
    assert out.rstrip().endswith("run_checks: stopped.")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_ends_the_loop_at_once(sandbox_simulator, sqlite_child,  # noqa: F811
                                               stop):
    _path, env = sqlite_child
    seed_child(env, 8)
    sandbox_simulator.latency_ms = 500  # eight checks one at a time: about four seconds
    child = loop_in_its_round(env, sandbox_simulator)
    try:
        child.send_signal(stop)
        time.sleep(0.2)
        child.send_signal(stop)
        child.communicate(timeout=2)  # at once: not after the round's other checks
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -stop
    assert sandbox_simulator.token_requests < 8


ONE_OFF = [sys.executable, "manage.py", "run_checks", "--interval", "3600", "--concurrency", "1"]


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_one_off_run_after_the_checks_in_flight_with_a_summary(
        sandbox_simulator, sqlite_child, stop, status):  # noqa: F811
    _path, env = sqlite_child
    seed_child(env, 8)
    sandbox_simulator.latency_ms = 500  # eight checks one at a time: about four seconds
    child = loop_in_its_round(env, sandbox_simulator, command=ONE_OFF)
    try:
        child.send_signal(stop)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == status, err
    assert "Traceback" not in err
    assert "stopping after the checks in flight" in err
    assert f"Interrupted by {stop.name}" in err
    # The check in flight finished and was counted; no other one was started.
    done = sandbox_simulator.token_requests
    assert done < 8
    summary = re.search(r"checked (\d+) \(ok (\d+), failed 0\).*; interrupted, (\d+) left "
                        r"unchecked", out)
    assert summary, out
    assert int(summary[1]) == int(summary[2]) == done
    assert int(summary[3]) == 8 - done


def test_a_second_signal_ends_a_one_off_run_at_once(sandbox_simulator,
                                                    sqlite_child):  # noqa: F811
    _path, env = sqlite_child
    seed_child(env, 8)
    sandbox_simulator.latency_ms = 2000  # the check in flight outlasts the wait below
    child = loop_in_its_round(env, sandbox_simulator, command=ONE_OFF)
    try:
        child.send_signal(signal.SIGINT)
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=1.5)  # at once: not after the check in flight
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGINT


def test_a_stopped_round_hands_out_no_more_packages(sandbox_simulator):
    good_packages(3)
    stop = threading.Event()
    stop.set()
    report = schedule_round(slot_start=this_slot(), concurrency=THREADS, stop=stop)
    assert (report.checked, report.left, report.interrupted) == (0, 3, True)
    assert sandbox_simulator.token_requests == 0
    assert report.summary().endswith("; interrupted, 3 left unchecked")
    # Nothing was claimed, so a later run in the same slot checks them all.
    assert schedule_round(slot_start=this_slot(), concurrency=THREADS).checked == 3


def test_two_worker_processes_on_one_sqlite_file_check_each_package_once(sandbox_simulator,
                                                                        sqlite_child):  # noqa: F811
    _path, env = sqlite_child
    seed_child(env, 8)
    sandbox_simulator.latency_ms = 300  # rounds of over a second, so the two overlap
    env = {**env, "IQMETRIX_SANDBOX_ACCOUNTS_URL": sandbox_simulator.url}
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_checks", "--concurrency", "2"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _out, err in outputs]
    assert sandbox_simulator.token_requests == 8
    checked = [int(re.search(r"checked (\d+)", out).group(1)) for out, _err in outputs]
    skipped = [int(re.search(r"skipped (\d+)", out).group(1)) for out, _err in outputs]
    assert sum(checked) == 8 and sum(skipped) == 8


@pytest.mark.parametrize(("args", "message"), [
    (["--concurrency", "0"], "--concurrency: must be a whole number from 1 to 64"),
    (["--concurrency", "abc"], "--concurrency: must be a whole number from 1 to 64"),
    (["--interval", "0"], "--interval: must be a whole number of seconds from 1 to 604800"),
    (["--interval", "1.5"], "--interval: must be a whole number of seconds from 1 to 604800"),
    (["--interval", "3000000000"], "--interval: must be a whole number of seconds from 1"),
])
def test_bad_arguments_are_a_usage_error_with_exit_2(sqlite_child, args,  # noqa: F811
                                                     message):
    _path, env = sqlite_child
    result = manage("run_checks", *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_an_unreachable_database_exits_1_in_one_line(sqlite_child):  # noqa: F811
    _path, env = sqlite_child
    env = {**env, "DATABASE_URL": "postgres://aislekeys@127.0.0.1:9/nowhere"}
    result = manage("run_checks", env=env)
    assert result.returncode == 1
    assert "The database cannot be reached: " in result.stderr
    assert "Traceback" not in result.stderr
