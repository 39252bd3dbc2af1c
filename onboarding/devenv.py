"""Write a development ``.env`` with fresh random keys, once.

Run as ``python -m onboarding.devenv [--path .env]`` (``make env`` does). Standard library
only: it runs before Django is configured, and it must not import settings, which would refuse
to start without the very keys this writes.

An existing file is never touched: it may hold the only key that decrypts the local database.
The file is created with ``O_CREAT | O_EXCL`` and mode 0600 in one call, so there is no moment
when the keys are readable by other users and no race with a second run. Key values are never
printed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import secrets
import sys
from pathlib import Path

DEFAULT_PORT = 8000


def encryption_key_entry(*, today: dt.date | None = None) -> str:
    """One ``FIELD_ENCRYPTION_KEYS`` entry: ``k<yyyymmdd>:<urlsafe base64 of 32 random bytes>``."""
    day = today or dt.date.today()
    key = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    return f"k{day:%Y%m%d}:{key}"


def render(*, today: dt.date | None = None) -> str:
    """The text of a fresh development ``.env``."""
    return "\n".join(
        [
            "# Development settings written by `make env` (python -m onboarding.devenv).",
            "# Never commit this file and never reuse these keys outside this machine.",
            "# Losing FIELD_ENCRYPTION_KEYS makes the stored credentials unreadable.",
            "DEBUG=true",
            f"SECRET_KEY={secrets.token_urlsafe(50)}",
            "# key id:urlsafe-base64 of 32 bytes, comma-separated, newest first",
            f"FIELD_ENCRYPTION_KEYS={encryption_key_entry(today=today)}",
            f"AUDIT_HMAC_KEY={secrets.token_urlsafe(48)}",
            "ALLOWED_HOSTS=127.0.0.1,localhost",
            f"PORT={DEFAULT_PORT}",
            "",
            "# Optional, with their defaults; .env.example explains each one.",
            "# Without DATABASE_URL the database is db.sqlite3 in the project folder.",
            "# DATABASE_URL=postgres://postgres@127.0.0.1:5432/aislekeys",
            "# IQMETRIX_SANDBOX_ACCOUNTS_URL=https://accountsrc.iqmetrix.net",
            "# IQMETRIX_PRODUCTION_ACCOUNTS_URL=https://accounts.iqmetrix.net",
            "# IQMETRIX_CONNECT_TIMEOUT=5",
            "# IQMETRIX_READ_TIMEOUT=15",
            "# PROMOTION_MAX_CHECK_AGE=  (default 24 hours; value format in .env.example)",
            "# SUDO_MINUTES=10",
            "",
        ]
    )


def write_env(path: Path, *, today: dt.date | None = None) -> bool:
    """Create ``path`` with mode 0600 unless it exists. Returns whether it was written."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    # The mode passed to os.open is filtered by the umask; 0600 only ever loses bits, but set
    # it explicitly so an unusual umask cannot leave the file unreadable to its owner.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render(today=today))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m onboarding.devenv",
        description="Write a development .env with fresh random keys, unless one exists.",
    )
    parser.add_argument("--path", type=Path, default=Path(".env"), help="default: .env")
    args = parser.parse_args(argv)
    path: Path = args.path
    if write_env(path):
        print(
            f"wrote {path} (mode 0600): DEBUG=true, new SECRET_KEY, FIELD_ENCRYPTION_KEYS, "
            f"AUDIT_HMAC_KEY, ALLOWED_HOSTS=127.0.0.1,localhost, PORT={DEFAULT_PORT}"
        )
    else:
        print(f"kept existing {path} (not changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
