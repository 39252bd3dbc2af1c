"""`check_connectivity` against the simulator: exit codes and the --json lines of design.md."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from onboarding.models import (
    AuditEvent,
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
)
from tests.conftest import KNOWN_PASSWORD, onboard

KEYS = {"integration", "environment", "outcome", "http_status", "expires_at", "duration_ms",
        "message"}


def run(capsys, *args: str) -> tuple[int, list[str], str]:
    """Run the command as manage.py would; (exit code, stdout lines, stderr).

    call_command, not execute_from_command_line: the latter closes every database connection
    when done, which would end the test's transaction on PostgreSQL. manage.py prints a
    CommandError on stderr and exits with its returncode; this does the same.
    """
    try:
        call_command("check_connectivity", *args)
        code, err = 0, ""
    except CommandError as exc:
        code, err = exc.returncode, str(exc)
    out, stderr = capsys.readouterr()
    return code, out.splitlines(), stderr + err


def test_json_reports_ok_and_an_expiry_of_now_plus_expires_in(capsys, sandbox_simulator,
                                                              sandbox_version):
    code, lines, _ = run(capsys, "Acme POS", "--environment", "sandbox", "--json")
    assert code == 0
    (row,) = [json.loads(line) for line in lines]
    assert set(row) == KEYS
    assert row["integration"] == "Acme POS" and row["environment"] == "sandbox"
    assert row["outcome"] == "ok" and row["http_status"] == 200
    expires_at = datetime.fromisoformat(row["expires_at"])
    assert expires_at.utcoffset() is not None
    check = ConnectivityCheck.objects.get()
    assert expires_at == check.sent_at + timedelta(seconds=43199)
    assert check.trigger == "command" and check.requested_by is None
    assert AuditEvent.objects.get(action="check").actor_name == "system"


def test_a_wrong_password_exits_1_with_invalid_credentials(capsys, sandbox_simulator, db):
    onboard(password="not-" + KNOWN_PASSWORD)
    code, lines, err = run(capsys, "acme-pos", "--json")
    assert code == 1
    (row,) = [json.loads(line) for line in lines]
    assert row["outcome"] == "invalid_credentials" and row["expires_at"] is None
    assert "1 of 1 checks did not pass" in err
    assert KNOWN_PASSWORD not in "".join(lines) + err


def test_all_checks_every_package_with_credentials(capsys, sandbox_simulator, settings, db):
    onboard(name="Alpha")
    onboard(name="Beta")
    onboard(name="Beta", environment=Environment.PRODUCTION)
    settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                       "production": "http://127.0.0.1:9"}
    code, lines, err = run(capsys, "--all", "--json")
    rows = [json.loads(line) for line in lines]
    assert [(r["integration"], r["environment"], r["outcome"]) for r in rows] == [
        ("Alpha", "sandbox", "ok"), ("Beta", "sandbox", "ok"),
        ("Beta", "production", "unreachable"),
    ]
    assert code == 1 and "1 of 3 checks did not pass" in err


def test_text_output_names_the_outcome(capsys, sandbox_simulator, sandbox_version):
    code, lines, _ = run(capsys, "Acme POS")
    assert code == 0
    assert lines[0].startswith("Acme POS · Sandbox: ok expires ")


def test_an_unknown_integration_exits_1_with_a_sentence(capsys, db):
    code, lines, err = run(capsys, "Nope")
    assert code == 1 and lines == []
    assert "No integration is named 'Nope'." in err


def test_a_name_that_is_another_integrations_slug_checks_the_integration_so_named(
        capsys, sandbox_simulator, sandbox_version):
    # Possible before the admin refused it: "acme-pos" is Acme POS's slug and this one's name.
    Integration.objects.create(name="acme-pos", slug="acme-pos-2")
    onboard(name="acme-pos")
    code, lines, _ = run(capsys, "acme-pos", "--json")
    assert code == 0
    assert [json.loads(line)["integration"] for line in lines] == ["acme-pos"]


def test_nothing_to_check_exits_1(capsys, sandbox_version):
    code, _, err = run(capsys, "Acme POS", "--environment", "production")
    assert code == 1
    assert "nothing to check" in err


def test_missing_credentials_count_as_not_ok(capsys, sandbox_simulator, sandbox_version):
    PackageVersion.objects.update(password=None)
    code, lines, _ = run(capsys, "Acme POS", "--json")
    assert code == 1
    row = json.loads(lines[0])
    assert row["outcome"] is None and "no password" in row["message"]


@pytest.mark.parametrize("args", [[], ["Acme POS", "--all"]])
def test_naming_nothing_or_both_is_a_usage_error(capsys, db, args):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "Name one integration or pass --all" in err


def test_demo_seeds_once_checks_green_and_creates_the_first_admin(capsys, settings, db):
    from django.contrib.auth.models import User

    from onboarding.models import Integration

    # Through the fixture, so the demo's in-process override of the URL is undone afterwards.
    settings.IQMETRIX_ACCOUNTS_URLS = dict(settings.IQMETRIX_ACCOUNTS_URLS)
    for _run in range(2):
        call_command("demo", "--port", "8123", "--no-serve")
        OnboardingPackage.objects.update(check_busy_until=None)  # a later re-run, not a click
    out = capsys.readouterr().out
    assert out.count("Seeded Demo Store") == 1
    assert out.count("Demo Store · Sandbox: ok.") == 2
    assert "Dashboard: http://127.0.0.1:8123/" in out
    assert out.count("one-time password:") == 1
    integration = Integration.objects.get(name="Demo Store")
    assert integration.packages.get().versions.count() == 1
    assert ConnectivityCheck.objects.filter(outcome="ok").count() == 2
    assert User.objects.filter(is_superuser=True).count() == 1
