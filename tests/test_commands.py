"""The first admin: created once with a one-time password that must be changed at first sign-in;
the exit codes of the foundation commands in a real process; arguments that are not text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command, load_command_class

from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import PasswordChangeRequired
from tests import manage_subprocess
from tests.manage_subprocess import manage

sqlite_child = manage_subprocess.sqlite_child
_migrated_template = manage_subprocess._migrated_template

LOGIN = "/accounts/login/"
PASSWORD_CHANGE = "/accounts/password/"


def _create_first_admin() -> str:
    out = io.StringIO()
    call_command("create_first_admin", stdout=out)
    return out.getvalue()


def _printed_password(output: str) -> str:
    match = re.search(r"one-time password: (\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.django_db
def test_create_first_admin_prints_the_user_name_and_a_working_password_once():
    output = _create_first_admin()
    assert "user name: admin" in output
    password = _printed_password(output)
    assert len(password) >= 20
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)
    assert PasswordChangeRequired.objects.filter(user=admin).exists()


@pytest.mark.django_db
def test_a_second_run_changes_nothing_and_prints_no_password():
    _create_first_admin()
    before = User.objects.get(username="admin").password

    output = _create_first_admin()
    assert "An admin account exists already; nothing changed." in output
    assert "password:" not in output
    assert User.objects.count() == 1
    assert User.objects.get(username="admin").password == before


@pytest.mark.django_db
def test_no_first_admin_when_another_superuser_exists(superuser):
    assert "nothing changed" in _create_first_admin()
    assert not User.objects.filter(username="admin").exists()


@pytest.mark.django_db
def test_every_first_admin_gets_a_different_password():
    first = _printed_password(_create_first_admin())
    User.objects.all().delete()
    assert _printed_password(_create_first_admin()) != first


@pytest.mark.django_db
def test_the_one_time_password_must_be_changed_before_anything_else(client):
    password = _printed_password(_create_first_admin())

    response = client.post(LOGIN, {"username": "admin", "password": password}, follow=True)
    assert response.redirect_chain[-1][0] == PASSWORD_CHANGE
    assert b"Choose your password" in response.content
    for url in ("/", "/admin/", "/admin/onboarding/onboardingpackage/"):
        blocked = client.get(url)
        assert blocked.status_code == 302 and blocked["Location"] == PASSWORD_CHANGE, url

    new_password = "a-Much-longer-passphrase-42"
    changed = client.post(PASSWORD_CHANGE, {"old_password": password,
                                            "new_password1": new_password,
                                            "new_password2": new_password})
    assert changed.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/admin/").status_code == 200
    assert not PasswordChangeRequired.objects.exists()
    assert User.objects.get(username="admin").check_password(new_password)


@pytest.mark.django_db
def test_a_weak_new_password_is_refused_and_the_block_stays(client):
    password = _printed_password(_create_first_admin())
    client.post(LOGIN, {"username": "admin", "password": password})
    response = client.post(PASSWORD_CHANGE, {"old_password": password,
                                             "new_password1": "short",
                                             "new_password2": "short"})
    assert response.status_code == 200
    assert PasswordChangeRequired.objects.exists()
    assert client.get("/")["Location"] == PASSWORD_CHANGE


# --- in a real process: exit codes and output -------------------------------------------------

def test_create_first_admin_in_a_child_process_prints_the_password_only_the_first_time(
        sqlite_child):
    _, env = sqlite_child
    first = manage("create_first_admin", env=env)
    assert first.returncode == 0
    _printed_password(first.stdout)
    second = manage("create_first_admin", env=env)
    assert second.returncode == 0
    assert "password:" not in second.stdout
    assert "nothing changed" in second.stdout


def test_rotate_check_on_an_empty_database_exits_0(sqlite_child):
    _, env = sqlite_child
    result = manage("rotate_encryption_keys", "--check", env=env)
    assert result.returncode == 0, result.stderr
    assert "0 values on older keys." in result.stdout


@pytest.mark.django_db
def test_a_plain_account_named_admin_does_not_stop_the_first_admin():
    User.objects.create_user(username="admin", password="x")
    output = _create_first_admin()
    assert "user name: admin2" in output
    assert User.objects.get(username="admin2").check_password(_printed_password(output))
    assert not User.objects.get(username="admin").is_superuser


# What a Latin-1 terminal sends for "Café": Python keeps the byte 0xE9, not UTF-8, as U+DCE9.
LATIN1_CAFE = "Caf\udce9"
NOT_TEXT = "'Caf\\xe9' is not valid text: check the terminal's encoding"


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "label"), [
    (["check_connectivity", LATIN1_CAFE], "integration"),
    (["promote", LATIN1_CAFE, "--by", "lead", "--reason", "go live"], "integration"),
    (["rollback", "Demo Store", "--to-version", "1", "--by", LATIN1_CAFE, "--reason", "undo"],
     "--by"),
    (["grant_access", "dev", "--role", "view", "--until", "2099-01-01T00:00+00:00",
      "--reason", "on call", "--by", LATIN1_CAFE], "--by"),
    (["revoke_access", "1", "--by", LATIN1_CAFE], "--by"),
    (["onboard", "Demo Store", "--environment", "sandbox", "--client-id", "c1",
      "--username", LATIN1_CAFE], "--username"),
])
def test_arguments_that_are_not_text_are_a_usage_error_with_exit_2(args, label):
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    assert raised.value.returncode == 2
    assert str(raised.value).startswith(f"{label} {NOT_TEXT}")


def test_a_latin1_byte_on_the_command_line_exits_2_in_one_line(sqlite_child):
    _, env = sqlite_child
    # subprocess encodes the surrogate back to the byte 0xE9: the child gets what the terminal
    # sent, and its sys.argv holds U+DCE9 again.
    result = manage("check_connectivity", LATIN1_CAFE, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"CommandError: integration {NOT_TEXT} (UTF-8 expected)."


def test_every_command_checks_its_arguments_are_text():
    # A command that forgets the shared base would take such arguments to the database again.
    commands = Path(manage_subprocess.REPO_ROOT, "onboarding/management/commands")
    names = [p.stem for p in commands.glob("[!_]*.py")]
    assert names
    for name in names:
        command = load_command_class("onboarding", name)
        assert isinstance(command, OnboardingCommand), name
