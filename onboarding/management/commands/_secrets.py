"""Secrets for commands: from the environment or a hidden prompt, never from argv."""

from __future__ import annotations

import getpass
import os
import sys

from django.core.management.base import CommandError


def read_secret(*, env_var: str, prompt: str) -> str:
    value = os.environ.get(env_var)
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError(
            f"Set {env_var} in the environment (secrets are never taken from the command "
            "line), or run this on a terminal to be asked for it.",
            returncode=1,
        )
    value = getpass.getpass(prompt)
    if not value:
        raise CommandError(f"No value entered for {env_var}; nothing was stored.", returncode=1)
    return value
