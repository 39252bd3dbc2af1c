from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._actors import actor_named, integration_named
from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.promotion import PromotionRefused, rollback_apply


class Command(OnboardingCommand):
    help = "Roll Production back to an earlier version, written as a new version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", help="integration name or slug")
        parser.add_argument("--to-version", required=True, type=int, metavar="N")
        parser.add_argument("--by", required=True, metavar="USER",
                            help="the user name of the person rolling back (needs promote)")
        parser.add_argument("--reason", required=True, metavar="TEXT")

    def handle(self, *args: Any, **options: Any) -> None:
        integration = integration_named(options["integration"])
        actor = actor_named(options["by"])
        try:
            rollback = rollback_apply(
                integration=integration, actor=actor, to_version_number=options["to_version"],
                reason=options["reason"],
                # No page was reviewed: the command names its target outright, so there is no
                # "current version it was chosen against" to hold Production to.
                reviewed_current=None,
            )
        except PromotionRefused as exc:
            raise CommandError(
                "\n".join(["Not rolled back; nothing was changed:", *exc.reasons]), returncode=1
            ) from None
        self.stdout.write(
            f"Rolled {integration.name} Production back to v{rollback.source_version.number} "
            f"as version {rollback.new_version.number}. "
            "It is unverified until a Production check passes."
        )
