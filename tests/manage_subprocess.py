"""Run `manage.py` in a child process with a clean environment, for exit codes, start-up errors
and the bytes of a real SQLite file.

The child never sees this process's environment (tests/settings.py puts keys into os.environ)
and never reads a developer's .env: DJANGO_READ_DOT_ENV=false, which dashboard/settings.py
honours. So what a test sets is exactly what the child gets.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def key_entry(key_id: str = "k1") -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def production_keys() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": key_entry(),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
    }


def clean_env(**values: str) -> dict[str, str]:
    """Only what a child needs to run, plus `values`; no keys unless given."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_READ_DOT_ENV": "false",
    }
    env.update(values)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` with no terminal on stdin (so nothing can prompt)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


_template: tuple[Path, dict[str, str]] | None = None


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """One migrated SQLite file per test session; tests get their own copy of it.

    Each test module re-exports this fixture, which pytest counts as separate fixtures, so the
    file is cached here to migrate once per session rather than once per module.
    """
    global _template
    if _template is None:
        path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
        env = clean_env(**production_keys(), DATABASE_URL=f"sqlite:///{path}")
        result = manage("migrate", "--noinput", env=env, timeout=180)
        assert result.returncode == 0, result.stderr
        _template = (path, env)
    return _template


@pytest.fixture
def sqlite_child(_migrated_template, tmp_path) -> tuple[Path, dict[str, str]]:
    """(database file, environment) for child processes: a fresh migrated SQLite database."""
    template, env = _migrated_template
    path = tmp_path / "db.sqlite3"
    shutil.copyfile(template, path)
    return path, {**env, "DATABASE_URL": f"sqlite:///{path}"}
