"""`python -m onboarding.devenv` writes a private development .env once and never overwrites it.

No database and no Django settings are needed: the script is standard library only.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import stat
import subprocess
import sys
from pathlib import Path

from onboarding import devenv

REPO_ROOT = Path(__file__).resolve().parent.parent


def _values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_writes_env_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert devenv.main(["--path", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_second_run_keeps_the_file_byte_identical(tmp_path: Path, capsys) -> None:
    path = tmp_path / ".env"
    devenv.main(["--path", str(path)])
    first = path.read_bytes()
    capsys.readouterr()

    assert devenv.main(["--path", str(path)]) == 0

    assert path.read_bytes() == first
    assert "kept existing" in capsys.readouterr().out


def test_existing_file_is_never_overwritten_even_when_not_generated_by_us(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\n", encoding="utf-8")
    assert devenv.write_env(path) is False
    assert path.read_text(encoding="utf-8") == "SECRET_KEY=mine\n"


def test_keys_have_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    devenv.write_env(path, today=dt.date(2025, 3, 7))
    values = _values(path)

    assert values["DEBUG"] == "true"
    assert values["ALLOWED_HOSTS"] == "127.0.0.1,localhost"
    assert values["PORT"] == "8000"
    # secrets.token_urlsafe(n) gives ceil(n * 4 / 3) characters of the urlsafe alphabet.
    assert re.fullmatch(r"[A-Za-z0-9_-]{67}", values["SECRET_KEY"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}", values["AUDIT_HMAC_KEY"])

    entries = values["FIELD_ENCRYPTION_KEYS"].split(",")
    assert len(entries) == 1
    key_id, _, encoded = entries[0].partition(":")
    assert key_id == "k20250307"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", encoded)
    assert len(base64.urlsafe_b64decode(encoded)) == 32


def test_every_run_makes_new_keys(tmp_path: Path) -> None:
    devenv.write_env(tmp_path / "a.env")
    devenv.write_env(tmp_path / "b.env")
    a, b = _values(tmp_path / "a.env"), _values(tmp_path / "b.env")
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "AUDIT_HMAC_KEY"):
        assert a[name] != b[name]


def test_other_variables_are_listed_as_comments(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    devenv.write_env(path)
    text = path.read_text(encoding="utf-8")
    for name in (
        "DATABASE_URL",
        "IQMETRIX_SANDBOX_ACCOUNTS_URL",
        "IQMETRIX_PRODUCTION_ACCOUNTS_URL",
        "IQMETRIX_CONNECT_TIMEOUT",
        "IQMETRIX_READ_TIMEOUT",
        "PROMOTION_MAX_CHECK_AGE",
        "SUDO_MINUTES",
    ):
        assert re.search(rf"^# {name}=", text, re.MULTILINE), name
        assert name not in _values(path)


def test_output_never_contains_key_values(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    result = subprocess.run(
        [sys.executable, "-m", "onboarding.devenv", "--path", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    values = _values(path)
    output = result.stdout + result.stderr
    assert f"wrote {path}" in output
    for name in ("SECRET_KEY", "AUDIT_HMAC_KEY"):
        assert values[name] not in output
    assert values["FIELD_ENCRYPTION_KEYS"].partition(":")[2] not in output
