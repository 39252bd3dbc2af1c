from typing import Any

from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.accounts import first_admin_ensure


class Command(OnboardingCommand):
    help = "Create the first admin with a one-time password, unless an admin exists."

    def handle(self, *args: Any, **options: Any) -> None:
        created = first_admin_ensure()
        if created is None:
            self.stdout.write("An admin account exists already; nothing changed.")
            return
        username, password = created
        # Printed once, to the operator's own terminal; it must be changed at first sign-in.
        self.stdout.write(self.style.SUCCESS("Created the first admin account."))
        self.stdout.write(f"  user name: {username}")
        self.stdout.write(f"  one-time password: {password}")
        self.stdout.write("  You will be asked to choose your own password at first sign-in.")
