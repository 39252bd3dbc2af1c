#!/usr/bin/env python
"""Django's command-line utility for Aisle Keys."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration mistake deserves one plain sentence, not a traceback.
        sys.stderr.write(f"Aisle Keys cannot start: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
