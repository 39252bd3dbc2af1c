from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._actors import actor_named, integration_named
from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.promotion import PromotionRefused, promotion_apply


class Command(OnboardingCommand):
    help = (
        "Promote the current Sandbox configuration to a new Production version. Production keeps "
        "its own credentials unless --copy-credentials is given. Same guards as the admin action."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("integration", help="integration name or slug")
        parser.add_argument("--by", required=True, metavar="USER",
                            help="the user name of the person promoting (needs the promote right)")
        parser.add_argument("--reason", required=True, metavar="TEXT")
        parser.add_argument("--copy-credentials", action="store_true",
                            help="copy Sandbox's credentials too (separate accounts as a rule)")

    def handle(self, *args: Any, **options: Any) -> None:
        integration = integration_named(options["integration"])
        actor = actor_named(options["by"])
        try:
            # No reviewed versions: there is no confirmation page that could go stale; the
            # operator decides on Sandbox and Production as they are when the command runs.
            promotion = promotion_apply(
                integration=integration, actor=actor, reason=options["reason"],
                copy_credentials=options["copy_credentials"], reviewed_sandbox_version=None,
                reviewed_production_version=None,
            )
        except PromotionRefused as exc:
            raise CommandError(
                "\n".join(["Not promoted; nothing was changed:", *exc.reasons]), returncode=1
            ) from None
        credentials = ("Sandbox's credentials" if promotion.copied_credentials
                       else "Production's own credentials")
        # Say what the lead must do next: keeping credentials Production never had leaves none.
        after = ("It is unverified until a Production check passes."
                 if promotion.new_version.has_credentials else
                 "Production has no credentials yet: store them with `onboard --environment "
                 "production`, or promote again with --copy-credentials.")
        self.stdout.write(
            f"Promoted {integration.name} Sandbox v{promotion.source_version.number} to "
            f"Production version {promotion.new_version.number} (with {credentials}). {after}"
        )
