from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import Integration, Role
from onboarding.services.grants import GrantError, grant_create, user_find
from onboarding.services.packages import integration_find


class Command(OnboardingCommand):
    help = ("Grant a user one Production role until a time, on one integration or all; prints "
            "the grant's id. --by must be a superuser or hold onboarding.add_accessgrant.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="user name receiving the grant")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--until", required=True,
                            help="ISO 8601 end, e.g. 2026-12-31T18:00+00:00 (no offset: local)")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--by", required=True, help="user name of the person granting")
        parser.add_argument("--integration", help="integration name or slug (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            until = datetime.fromisoformat(options["until"])
        except ValueError:
            raise CommandError(f"--until '{options['until']}' is not an ISO 8601 time, e.g. "
                               "2026-12-31T18:00+00:00.", returncode=2) from None
        if timezone.is_naive(until):
            until = timezone.make_aware(until)
        # An empty --integration (an unset shell variable, "--integration ''") must not be
        # read as "left out": that would grant the role on every integration instead of one.
        if options["integration"] is not None and not options["integration"].strip():
            raise CommandError("--integration is empty: name the integration, or leave the "
                               "option out to grant on all integrations.", returncode=2)
        user = self._user(options["user"])
        by = self._user(options["by"])
        integration = None
        if options["integration"] is not None:
            try:
                integration = integration_find(name_or_slug=options["integration"])
            except Integration.DoesNotExist:
                raise CommandError(f"No integration is named '{options['integration']}'; "
                                   "nothing was granted.", returncode=1) from None
        try:
            grant = grant_create(user=user, role=options["role"], valid_until=until,
                                 reason=options["reason"], granted_by=by,
                                 integration=integration)
        except GrantError as exc:
            # Some refusals say so themselves ("…: nothing was granted."); say it once.
            said = "nothing was granted" in str(exc).lower()
            raise CommandError(str(exc) if said else f"{exc} Nothing was granted.",
                               returncode=1) from None
        self.stdout.write(str(grant.pk))

    def _user(self, username: str) -> Any:
        try:
            return user_find(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user is named '{username}'; nothing was granted.",
                               returncode=1) from None
