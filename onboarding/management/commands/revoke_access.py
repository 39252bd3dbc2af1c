from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import AccessGrant
from onboarding.services.grants import GrantError, grant_find, grant_revoke, user_find


class Command(OnboardingCommand):
    help = ("End a Production grant now. --by must be a superuser or hold "
            "onboarding.change_accessgrant.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("grant_id", help="the id grant_access printed (or the grant's UUID)")
        parser.add_argument("--by", required=True, help="user name of the person revoking")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            by = user_find(username=options["by"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user is named '{options['by']}'; nothing was revoked.",
                               returncode=1) from None
        try:
            grant = grant_find(ident=options["grant_id"])
        except AccessGrant.DoesNotExist:
            raise CommandError(f"There is no grant {options['grant_id']}.", returncode=1) from None
        try:
            grant = grant_revoke(grant=grant, revoked_by=by)
        except GrantError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"Revoked grant #{grant.pk} ({grant.role} for "
                          f"{grant.user.get_username()}).")
