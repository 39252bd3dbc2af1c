from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import Integration
from onboarding.services.status import package_statuses


class Command(OnboardingCommand):
    help = "Per integration and environment: version, state, last check and token expiry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args: Any, **options: Any) -> None:
        for status in package_statuses(integrations=Integration.objects.order_by("name")):
            check = status.last_check
            row = {
                "integration": status.integration.name,
                "environment": str(status.environment),
                "version": status.version.number if status.version else None,
                "state": str(status.state),
                "last_outcome": check.outcome if check else None,
                "last_checked_at": check.sent_at.isoformat() if check else None,
                "expires_at": status.expires_at.isoformat() if status.expires_at else None,
            }
            if options["json"]:
                self.stdout.write(json.dumps(row))
            else:
                self.stdout.write(
                    f"{row['integration']:<30} {row['environment']:<10} "
                    f"v{row['version'] or '-':<4} {row['state']:<20} "
                    f"{row['last_outcome'] or 'never checked':<20} {row['expires_at'] or ''}"
                )
