"""Set-up in two commands: what `make run` and `make test` do, the locked dependencies, CI, and
a real `runserver` serving the login page. (`.env` writing is tested in tests/test_devenv.py.)"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import manage_subprocess
from tests.manage_subprocess import REPO_ROOT, clean_env

sqlite_child = manage_subprocess.sqlite_child
_migrated_template = manage_subprocess._migrated_template

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def _make_dry_run(target: str, *variables: str, cwd: Path = REPO_ROOT) -> list[str]:
    result = subprocess.run(["make", "-n", target, *variables], cwd=cwd, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _index(lines: list[str], pattern: str) -> int:
    for number, line in enumerate(lines):
        if re.search(pattern, line):
            return number
    raise AssertionError(f"no command matching {pattern!r} in:\n" + "\n".join(lines))


@needs_make
def test_make_run_migrates_creates_the_first_admin_then_serves():
    lines = _make_dry_run("run")
    order = [_index(lines, r"-m onboarding\.devenv"),
             _index(lines, r"manage\.py migrate"),
             _index(lines, r"manage\.py create_first_admin"),
             _index(lines, r"manage\.py runserver 127\.0\.0\.1:\d+")]
    assert order == sorted(order)


@needs_make
def test_make_run_on_a_fresh_clone_installs_only_the_locked_hashes(tmp_path):
    for name in ("Makefile", "requirements/base.lock", "requirements/dev.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    lines = _make_dry_run("run", "PORT=9137", cwd=tmp_path)
    venv = _index(lines, r"-m venv \.venv")
    install = _index(lines, r"pip install --require-hashes --no-deps -r requirements/base\.lock")
    serve = _index(lines, r"manage\.py runserver 127\.0\.0\.1:9137$")
    assert venv < install < serve


@needs_make
def test_make_test_installs_the_dev_lock_and_runs_pytest(tmp_path):
    for name in ("Makefile", "requirements/base.lock", "requirements/dev.lock"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    lines = _make_dry_run("test", cwd=tmp_path)
    assert _index(lines, r"--require-hashes --no-deps -r requirements/dev\.lock") \
        < _index(lines, r"-m pytest")


def _locked(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pins = {}
    for block in blocks:
        match = re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{match.group(1)} has no hash in {path.name}"
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_dependencies_are_locked_to_exact_versions_with_hashes():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    base = _locked(REPO_ROOT / "requirements/base.lock")
    dev = _locked(REPO_ROOT / "requirements/dev.lock")

    def names(requirements: list[str]) -> set[str]:
        return {re.match(r"[A-Za-z0-9_.\-]+", r).group(0).lower() for r in requirements}

    assert names(project["project"]["dependencies"]) <= set(base)
    assert names(project["project"]["optional-dependencies"]["dev"]) <= set(dev)
    assert set(base) <= set(dev)
    assert {name: dev[name] for name in base} == base  # the same pins in both
    text = (REPO_ROOT / "requirements/base.lock").read_text(encoding="utf-8")
    assert not re.search(r"^\S+(>=|<=|~=|>|<)", text, flags=re.MULTILINE)


def test_ci_runs_lint_and_the_suite_on_sqlite_and_on_a_fresh_postgres_database():
    script = (REPO_ROOT / ".ci/run").read_text(encoding="utf-8")
    assert (REPO_ROOT / ".ci/run").stat().st_mode & 0o111
    assert "set -euo pipefail" in script
    assert "make lint" in script
    assert re.search(r"env -u DATABASE_URL make test", script)
    assert re.search(r"createdb .*\$name", script)
    assert re.search(r'DATABASE_URL="postgres://[^"]*/\$\{db\}" make test', script)
    syntax = subprocess.run(["bash", "-n", str(REPO_ROOT / ".ci/run")], capture_output=True,
                            text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_every_setting_read_from_the_environment_is_in_env_example():
    source = (REPO_ROOT / "dashboard/settings.py").read_text(encoding="utf-8")
    readers = r"(?:env\.\w+|_required|_duration|_accounts_url|_flag|_number)"
    read = set(re.findall(readers + r'\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "AUDIT_HMAC_KEY", "DATABASE_URL"} <= read
    example = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert read - listed == set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runserver_with_a_development_env_serves_the_login_page(sqlite_child):
    """What `make run` ends with: the development server answering on 127.0.0.1."""
    _, env = sqlite_child
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO_ROOT, env={**env, "DEBUG": "true"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/",
                                            timeout=2) as response:
                    body = response.read().decode()
                    break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "runserver did not answer in 30 s"
                time.sleep(0.2)
        assert "Sign in" in body
        assert 'name="password"' in body
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_clean_environment_has_no_keys():
    # The child-process tests rely on this: nothing of this process's keys leaks into them.
    env = clean_env()
    assert not {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "AUDIT_HMAC_KEY"} & set(env)
    assert env["DJANGO_READ_DOT_ENV"] == "false"


def _get(url: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- loopback
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@needs_make
def test_make_serve_runs_gunicorn_with_debug_off_even_when_debug_is_on(sqlite_child):
    """The commands `make serve` runs, run as they are: the production server a developer
    tries locally, whose .env (like this environment) says DEBUG=true."""
    _, env = sqlite_child
    port = _free_port()
    text = "\n".join(_make_dry_run("serve", f"PORT={port}")).replace("\\\n", " ")
    commands = [line for line in text.splitlines() if line.startswith("DEBUG=false ")]
    assert len(commands) == 3 and "gunicorn" in commands[-1], commands
    env = {**env, "DEBUG": "true"}
    for command in commands[:-1]:  # migrate, collectstatic
        done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
    server = subprocess.Popen(["bash", "-c", commands[-1]], cwd=REPO_ROOT, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, page = _get(f"http://127.0.0.1:{port}/accounts/login/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
                time.sleep(0.2)
        assert status == 200 and "Sign in" in page
        css = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page)
        assert css, "the login page links no hashed stylesheet"
        status, _, missing = _get(f"http://127.0.0.1:{port}/no-such-page/")
        assert status == 404 and "DEBUG" not in missing  # not Django's debug page
        status, headers, _ = _get(f"http://127.0.0.1:{port}{css.group(1)}")
        assert status == 200
        assert "immutable" in headers.get("Cache-Control", "")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # gunicorn and its workers
        server.wait(timeout=10)
