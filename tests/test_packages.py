"""`onboard` and `packages`: the command-line way to store a package and list them."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.core.validators import validate_slug
from django.db import connection

from onboarding.models import AuditEvent, Integration, PackageVersion
from onboarding.services.packages import integration_find, integration_names_taken
from tests import manage_subprocess
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET
from tests.manage_subprocess import manage

sqlite_child = manage_subprocess.sqlite_child
_migrated_template = manage_subprocess._migrated_template

ONBOARD = ["Acme POS", "--environment", "sandbox", "--client-id", "client-abcdef123456",
           "--username", "api.user@example.com"]
PACKAGE_KEYS = {"integration", "environment", "version", "state", "last_outcome",
                "last_checked_at", "expires_at"}


@pytest.fixture
def secrets_in_env(monkeypatch):
    monkeypatch.setenv("IQMETRIX_CLIENT_SECRET", KNOWN_SECRET)
    monkeypatch.setenv("IQMETRIX_PASSWORD", KNOWN_PASSWORD)


def _call(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _packages_json() -> list[dict]:
    return [json.loads(line) for line in _call("packages", "--json").splitlines()]


def _counts() -> tuple[int, int, int]:
    return (Integration.objects.count(), PackageVersion.objects.count(),
            AuditEvent.objects.count())


def _file_counts(path) -> tuple[int, ...]:
    with sqlite3.connect(path) as db:
        return tuple(db.execute(f"SELECT count(*) FROM onboarding_{table}").fetchone()[0]  # noqa: S608
                     for table in ("integration", "packageversion", "auditevent"))


@pytest.mark.django_db
def test_onboard_then_packages_json_shows_the_new_version(secrets_in_env):
    out = _call("onboard", *ONBOARD, "--company-id", "14146")
    assert "Created the integration and stored Acme POS Sandbox package version 1." in out

    rows = _packages_json()
    assert all(set(row) == PACKAGE_KEYS for row in rows)
    sandbox = next(r for r in rows if r["environment"] == "sandbox")
    production = next(r for r in rows if r["environment"] == "production")
    assert sandbox == {"integration": "Acme POS", "environment": "sandbox", "version": 1,
                       "state": "unverified", "last_outcome": None, "last_checked_at": None,
                       "expires_at": None}
    assert production["version"] is None
    assert production["state"] == "credentials_missing"

    version = PackageVersion.objects.get()
    assert (version.client_secret, version.password) == (KNOWN_SECRET, KNOWN_PASSWORD)
    assert version.company_id == 14146


@pytest.mark.django_db
def test_a_second_onboard_makes_version_2(secrets_in_env, monkeypatch):
    _call("onboard", *ONBOARD)
    monkeypatch.setenv("IQMETRIX_CLIENT_SECRET", "a-new-client-secret")
    # Named by its slug the second time: the same integration.
    out = _call("onboard", "acme-pos", *ONBOARD[1:])

    assert "Stored Acme POS Sandbox package version 2." in out
    assert Integration.objects.count() == 1
    sandbox = next(r for r in _packages_json() if r["environment"] == "sandbox")
    assert sandbox["version"] == 2
    newest = PackageVersion.objects.get(number=2)
    assert newest.client_secret == "a-new-client-secret"
    assert PackageVersion.objects.get(number=1).client_secret == KNOWN_SECRET


@pytest.mark.django_db
def test_onboarding_the_same_values_again_stores_nothing(secrets_in_env):
    _call("onboard", *ONBOARD)
    events = AuditEvent.objects.count()
    out = _call("onboard", "acme-pos", *ONBOARD[1:])

    assert "Nothing changed: Acme POS Sandbox stays at package version 1." in out
    assert PackageVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events  # no "package edited" with nothing changed


@pytest.mark.django_db
def test_packages_without_json_prints_a_table(secrets_in_env):
    _call("onboard", *ONBOARD)
    out = _call("packages")
    assert "Acme POS" in out and "never checked" in out and "v1" in out


@pytest.mark.django_db
def test_command_output_never_contains_a_secret(secrets_in_env):
    out = _call("onboard", *ONBOARD) + _call("packages") + _call("packages", "--json")
    assert KNOWN_SECRET not in out
    assert KNOWN_PASSWORD not in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--client-id", "  "], "--client-id must not be empty"),
        (["--username", "not-an-email"], "e-mail address"),
        (["--company-id", "0"], "positive whole number"),
        (["--company-id", str(2**63)], "too large"),
        (["--location-id", "L" * 65], "at most 64 characters"),
        (["--client-id", "c" * 201], "client ID can be at most 200 characters"),
    ],
    ids=["empty-client-id", "bad-username", "bad-company-id", "huge-company-id",
         "long-location-id", "long-client-id"],
)
def test_a_refused_onboard_writes_nothing(secrets_in_env, args, words):
    before = _counts()
    with pytest.raises(CommandError) as caught:
        _call("onboard", *ONBOARD, *args)
    assert caught.value.returncode == 1
    assert words in str(caught.value)
    assert "Nothing was stored" in str(caught.value) or "nothing was stored" in str(caught.value)
    assert _counts() == before


@pytest.mark.django_db
def test_an_overlong_integration_name_is_refused_and_writes_nothing(secrets_in_env):
    before = _counts()
    with pytest.raises(CommandError, match="at most 120 characters") as caught:
        _call("onboard", "N" * 121, *ONBOARD[1:])
    assert caught.value.returncode == 1
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Acme\x1b[2J POS", "Acme\tPOS", "Acme \u202eSOP", "Acme\x85POS"])
def test_a_new_name_with_control_characters_is_refused_and_writes_nothing(secrets_in_env, name):
    # It was stored, and `packages` then printed the ESC sequence (here: clear the screen) to
    # whoever listed the packages; an override showed the name backwards everywhere.
    before = _counts()
    with pytest.raises(CommandError, match="cannot hold control characters") as caught:
        _call("onboard", name, *ONBOARD[1:])
    assert caught.value.returncode == 1 and "Nothing was stored." in str(caught.value)
    assert _counts() == before


@pytest.mark.django_db
def test_right_to_left_and_emoji_names_are_fine(secrets_in_env):
    _call("onboard", "Acme קופה ראשית 🛒", *ONBOARD[1:])
    assert Integration.objects.get().name == "Acme קופה ראשית 🛒"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "slug"), [("Кофейня", "xn--e1aiboc0b6e"),
                                            ("קופה ראשית", "xn----0hckdx6dtamkl")])
def test_a_name_without_latin_letters_gets_an_ascii_slug(secrets_in_env, name, slug):
    # slugify() made "" of it, and onboard refused the name as having no letter or digit.
    _call("onboard", name, *ONBOARD[1:])
    integration = Integration.objects.get()
    assert (integration.name, integration.slug) == (name, slug)
    validate_slug(integration.slug)  # the admin can save it as it is
    _call("onboard", slug, *ONBOARD[1:])  # and commands find it by either
    assert Integration.objects.count() == 1


@pytest.mark.django_db
def test_a_name_without_any_letter_or_digit_is_still_refused(secrets_in_env):
    with pytest.raises(CommandError, match="at least one letter or digit"):
        _call("onboard", "🛒 !!", *ONBOARD[1:])
    assert not Integration.objects.exists()


@pytest.mark.django_db
def test_a_slug_taken_by_another_name_is_refused_and_writes_nothing(secrets_in_env):
    _call("onboard", *ONBOARD)
    before = _counts()
    with pytest.raises(CommandError, match="already has this name or uses it as its slug"):
        _call("onboard", "Acme-POS", *ONBOARD[1:])  # the slug of "Acme POS"
    assert _counts() == before
    with pytest.raises(CommandError, match="already uses the short name 'acme-pos'"):
        _call("onboard", "Acme  POS", *ONBOARD[1:])
    assert _counts() == before


@pytest.mark.django_db
def test_another_spelling_of_an_existing_name_is_refused_not_made_a_twin(secrets_in_env):
    # The slug an admin chose differs from the name's, so only the name can clash.
    Integration.objects.create(name="Store Kiosk", slug="kiosk-7")
    before = _counts()
    with pytest.raises(CommandError, match="Another integration already has this name") as caught:
        _call("onboard", "store kiosk", *ONBOARD[1:])
    assert caught.value.returncode == 1 and "Nothing was stored." in str(caught.value)
    assert _counts() == before
    assert list(Integration.objects.values_list("name", flat=True)) == ["Store Kiosk"]


@pytest.mark.django_db
def test_a_name_that_is_another_integrations_slug_finds_the_integration_so_named(
        secrets_in_env):
    _call("onboard", *ONBOARD)
    acme = Integration.objects.get()
    # Possible before the admin refused it: "acme-pos" is Acme POS's slug and this one's name.
    other = Integration.objects.create(name="acme-pos", slug="acme-pos-2")
    assert integration_find(name_or_slug="acme-pos") == other
    assert integration_find(name_or_slug="acme-pos-2") == other
    assert integration_find(name_or_slug="Acme POS") == acme

    out = _call("onboard", "acme-pos", *ONBOARD[1:])
    assert "Stored acme-pos Sandbox package version 1." in out
    assert PackageVersion.objects.filter(package__integration=other).count() == 1
    assert PackageVersion.objects.filter(package__integration=acme).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "slug", "taken"), [
    ("acme-pos", "acme-pos-2", ["name"]),   # another's slug
    ("ACME pos", "acme-pos-3", ["name"]),   # another's name, in other letters
    ("Widget", "acme-pos", ["slug"]),       # another's slug
    ("Widget", "acme pos", ["slug"]),       # another's name
    ("Widget", "widget", []),
])
def test_a_name_or_slug_another_integration_answers_to_is_taken(secrets_in_env, name, slug,
                                                                   taken):
    _call("onboard", *ONBOARD)
    assert list(integration_names_taken(name=name, slug=slug)) == taken
    acme = Integration.objects.get()
    assert integration_names_taken(name=acme.name, slug=acme.slug, exclude_pk=acme.pk) == {}


# --- exit codes, in a child process -----------------------------------------------------------

def _one_plain_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_an_unknown_environment_exits_2_and_writes_nothing(sqlite_child):
    path, env = sqlite_child
    before = _file_counts(path)
    result = manage("onboard", "Acme POS", "--environment", "staging", "--client-id", "c",
                    "--username", "api.user@example.com",
                    env={**env, "IQMETRIX_CLIENT_SECRET": "s", "IQMETRIX_PASSWORD": "p"})
    assert result.returncode == 2
    assert "invalid choice: 'staging'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _file_counts(path) == before


def test_an_empty_client_id_exits_1_with_one_sentence(sqlite_child):
    path, env = sqlite_child
    before = _file_counts(path)
    result = manage("onboard", "Acme POS", "--environment", "sandbox", "--client-id", "",
                    "--username", "api.user@example.com",
                    env={**env, "IQMETRIX_CLIENT_SECRET": "s", "IQMETRIX_PASSWORD": "p"})
    assert result.returncode == 1
    assert "--client-id must not be empty" in _one_plain_line(result.stderr)
    assert _file_counts(path) == before


@pytest.mark.parametrize("present", [{}, {"IQMETRIX_CLIENT_SECRET": "s"}],
                         ids=["neither", "secret-only"])
def test_no_secret_in_the_environment_and_no_terminal_exits_1(sqlite_child, present):
    path, env = sqlite_child
    before = _file_counts(path)
    result = manage("onboard", *ONBOARD, env={**env, **present})
    assert result.returncode == 1
    line = _one_plain_line(result.stderr)
    missing = "IQMETRIX_PASSWORD" if present else "IQMETRIX_CLIENT_SECRET"
    assert f"Set {missing} in the environment" in line
    assert _file_counts(path) == before


def test_a_secret_is_never_accepted_on_the_command_line(sqlite_child):
    path, env = sqlite_child
    result = manage("onboard", *ONBOARD, "--client-secret", KNOWN_SECRET,
                    env={**env, "IQMETRIX_PASSWORD": "p"})
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert _file_counts(path) == (0, 0, 0)


def test_onboard_in_a_child_process_exits_0_and_packages_lists_it(sqlite_child):
    _path, env = sqlite_child
    env = {**env, "IQMETRIX_CLIENT_SECRET": KNOWN_SECRET, "IQMETRIX_PASSWORD": KNOWN_PASSWORD}
    assert manage("onboard", *ONBOARD, env=env).returncode == 0
    listed = manage("packages", "--json", env=env)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["environment"], r["version"]) for r in rows] == [("sandbox", 1),
                                                                ("production", None)]


def _run_on_a_terminal(args: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run manage.py with a pseudo-terminal as its controlling terminal; answer each prompt."""
    import fcntl
    import os
    import pty
    import select
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=manage_subprocess.REPO_ROOT, env=env,
        stdin=slave, stdout=slave, stderr=slave, preexec_fn=take_terminal,
    )
    os.close(slave)
    output = b""
    pending = list(answers)
    answered = 0
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no prompt within 30 s; got {output!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            # Answer a prompt once it is shown: getpass discards anything typed ahead.
            if pending and output[answered:].rstrip().endswith(b":"):
                os.write(master, pending.pop(0).encode() + b"\n")
                answered = len(output)
        return process.wait(timeout=30), output.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_on_a_terminal_secrets_are_asked_for_without_echo(sqlite_child):
    path, env = sqlite_child
    code, output = _run_on_a_terminal(["onboard", *ONBOARD], env,
                                      [KNOWN_SECRET, KNOWN_PASSWORD])
    assert code == 0, output
    assert "Sandbox client secret:" in output
    assert "Sandbox password for api.user@example.com:" in output
    assert "Created the integration and stored Acme POS Sandbox package version 1." in output
    assert KNOWN_SECRET not in output and KNOWN_PASSWORD not in output  # not echoed
    assert _file_counts(path)[1] == 1


def test_an_empty_answer_on_a_terminal_stores_nothing(sqlite_child):
    path, env = sqlite_child
    code, output = _run_on_a_terminal(["onboard", *ONBOARD], env, [""])
    assert code == 1
    assert "No value entered for IQMETRIX_CLIENT_SECRET; nothing was stored." in output
    assert _file_counts(path) == (0, 0, 0)


@pytest.mark.parametrize("name", ["client_id", "username", "client_secret", "password", "notes"])
def test_every_path_in_shares_the_forms_length_limits(name):
    from onboarding.services.packages import TEXT_MAX, package_validate
    from tests.conftest import package_data

    limit = TEXT_MAX[name]
    long = "x" * (limit - len("@example.com")) + "@example.com" if name == "username" \
        else "x" * limit
    package_validate(data=package_data(**{name: long}))  # at the limit: fine
    with pytest.raises(ValidationError) as caught:
        package_validate(data=package_data(**{name: long + "x"}))
    assert f"at most {limit} characters" in caught.value.message_dict[name][0]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks: PostgreSQL only")
def test_deleting_an_integration_locks_its_packages_before_the_audit_chain(db):
    """A save or a check locks the package row, then the chain head: deleting must take them in
    the same order, or the two deadlock."""
    from django.contrib.auth.models import User
    from django.test.utils import CaptureQueriesContext

    from onboarding.services.packages import integration_delete
    from tests.conftest import onboard

    integration = onboard().package.integration
    root = User.objects.create_superuser("root", password="unused-in-tests-1234")
    with CaptureQueriesContext(connection) as captured:
        integration_delete(integration=integration, actor=root)
    locks = [q["sql"] for q in captured if "FOR UPDATE" in q["sql"]]
    tables = [next(t for t in ("onboarding_onboardingpackage", "onboarding_auditchainhead",
                               "onboarding_integration") if f'FROM "{t}"' in sql)
              for sql in locks]
    assert tables.index("onboarding_onboardingpackage") < tables.index("onboarding_auditchainhead")


@pytest.mark.django_db
def test_a_secret_that_is_not_valid_text_is_refused_not_a_crash(monkeypatch):
    # os.environ holds bytes that are not UTF-8 as lone surrogates: such a value can be
    # neither encrypted nor sent, so it is a refusal naming the field, never a traceback.
    monkeypatch.setenv("IQMETRIX_CLIENT_SECRET", "secret-\udc80-tail")
    monkeypatch.setenv("IQMETRIX_PASSWORD", KNOWN_PASSWORD)
    with pytest.raises(CommandError) as refused:
        _call("onboard", *ONBOARD)
    assert str(refused.value) == ("The client secret holds characters that are not valid text; "
                                  "type it again. Nothing was stored.")
    assert (Integration.objects.count(), PackageVersion.objects.count()) == (0, 0)
