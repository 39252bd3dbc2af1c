from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.management.commands._secrets import read_secret
from onboarding.models import Environment, ResponseFormat, VersionSource
from onboarding.services.packages import (
    PackageData,
    PackageError,
    package_onboard,
)


class Command(OnboardingCommand):
    help = (
        "Create the integration if new and store a new package version. Secrets come from "
        "IQMETRIX_CLIENT_SECRET and IQMETRIX_PASSWORD, or a hidden prompt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", help="integration name or slug")
        parser.add_argument("--environment", required=True, choices=Environment.values)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--username", required=True, help="the API user's e-mail")
        parser.add_argument("--company-id", type=int)
        parser.add_argument("--location-id", default="")
        parser.add_argument("--response-format", default=ResponseFormat.JSON,
                            choices=ResponseFormat.values)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["client_id"].strip():
            # Refused like any other invalid value (exit 1), before anyone is asked for secrets.
            raise CommandError("--client-id must not be empty; nothing was stored.", returncode=1)
        env = Environment(options["environment"])
        client_secret = read_secret(env_var="IQMETRIX_CLIENT_SECRET",
                                    prompt=f"{env.label} client secret: ")
        password = read_secret(env_var="IQMETRIX_PASSWORD",
                               prompt=f"{env.label} password for {options['username']}: ")
        data = PackageData(
            client_id=options["client_id"], username=options["username"],
            client_secret=client_secret, password=password, company_id=options["company_id"],
            location_id=options["location_id"], response_format=options["response_format"],
        )
        try:
            stored, created = package_onboard(
                integration_name=options["integration"], environment=env, data=data,
                source=VersionSource.COMMAND,
            )
        except ValidationError as exc:
            reasons = "; ".join(m for msgs in exc.message_dict.values() for m in msgs)
            raise CommandError(f"{reasons} Nothing was stored.", returncode=1) from None
        except PackageError as exc:
            raise CommandError(f"{exc} Nothing was stored.", returncode=1) from None
        version = stored.version
        name = version.package.integration.name
        if not stored.new:
            self.stdout.write(f"Nothing changed: {name} {env.label} stays at package version "
                              f"{version.number}.")
            return
        made = "Created the integration and stored" if created else "Stored"
        self.stdout.write(f"{made} {name} {env.label} package version {version.number}.")
