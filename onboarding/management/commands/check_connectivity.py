"""Run real token exchanges from the command line: exit 0 when every check is ok, 1 otherwise."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import CheckTrigger, Environment, OnboardingPackage
from onboarding.services.checks import CheckError, check_run, check_targets


class Command(OnboardingCommand):
    help = ("Check that the stored credentials get a token from iQmetrix: one integration (name "
            "or slug) or --all; exit 1 if any check is not ok.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", nargs="?", help="integration name or slug")
        parser.add_argument("--environment", choices=Environment.values,
                            help="only this environment (default: every one with credentials)")
        parser.add_argument("--all", action="store_true", help="check every integration")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["integration"]
        if (name is None) == (not options["all"]):
            raise CommandError("Name one integration or pass --all (not both).", returncode=2)
        try:
            packages = check_targets(integration=name, environment=options["environment"])
        except CheckError as exc:
            raise CommandError(str(exc), returncode=1) from None
        failed = sum(not self._check(package, as_json=options["json"]) for package in packages)
        if failed:
            raise CommandError(f"{failed} of {len(packages)} checks did not pass.", returncode=1)

    def _check(self, package: OnboardingPackage, *, as_json: bool) -> bool:
        row: dict[str, Any] = {
            "integration": package.integration.name,
            "environment": package.environment,
            "outcome": None, "http_status": None, "expires_at": None, "duration_ms": None,
            "message": "",
        }
        try:
            check = check_run(package=package, trigger=CheckTrigger.COMMAND)
        except CheckError as exc:  # nothing was sent: say why, and count it as not ok
            row["message"] = str(exc)
            ok = False
        else:
            row.update(
                outcome=check.outcome, http_status=check.http_status,
                expires_at=check.expires_at.isoformat() if check.expires_at else None,
                duration_ms=check.duration_ms, message=check.message,
            )
            ok = check.ok
        if as_json:
            self.stdout.write(json.dumps(row))
        else:
            label = Environment(package.environment).label
            expiry = f" expires {row['expires_at']}" if row["expires_at"] else ""
            self.stdout.write(f"{row['integration']} · {label}: {row['outcome'] or 'not checked'}"
                              f"{expiry}. {row['message']}")
        return ok
