"""`make demo`: the dashboard with the local simulator as Sandbox and a seeded, checked integration,
so a newcomer sees a green check without iQmetrix credentials."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser

from onboarding.crypto import DecryptionError
from onboarding.management.commands._base import OnboardingCommand
from onboarding.models import (
    CheckTrigger,
    Environment,
    Integration,
    PackageVersion,
    VersionSource,
)
from onboarding.services.checks import CheckError, check_run
from onboarding.services.packages import PackageData, package_current, package_onboard
from onboarding.simulator import DEMO_ACCOUNT, Simulator

DEMO_INTEGRATION = "Demo Store"


class Command(OnboardingCommand):
    help = ("Serve the dashboard on 127.0.0.1 with the iQmetrix simulator as Sandbox and a "
            "checked demo integration (development only).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="dashboard port (8000)")
        parser.add_argument("--no-serve", action="store_true",
                            help="seed and check, then stop instead of serving")

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"]
        if not 0 < port < 65536:
            raise CommandError("--port must be between 1 and 65535.", returncode=2)
        simulator = Simulator(host="127.0.0.1", port=0)
        simulator.start()
        try:
            # In this process only: the simulator's port changes every run, and nothing else
            # (no setting, no other process) is pointed at it.
            settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                               "sandbox": simulator.url}
            self.stdout.write(f"iQmetrix simulator (Sandbox) on {simulator.url}")
            self._seed_and_check()
            self._admin()
            self.stdout.write(self.style.SUCCESS(f"Dashboard: http://127.0.0.1:{port}/"))
            if not options["no_serve"]:
                call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
        finally:
            simulator.stop()

    def _seed_and_check(self) -> None:
        current = _demo_version()
        if current is None:
            stored, _ = package_onboard(
                integration_name=DEMO_INTEGRATION, environment=Environment.SANDBOX,
                data=PackageData(client_id=DEMO_ACCOUNT.client_id, username=DEMO_ACCOUNT.username,
                                 client_secret=DEMO_ACCOUNT.client_secret,
                                 password=DEMO_ACCOUNT.password, notes="Seeded by `demo`."),
                source=VersionSource.COMMAND,
            )
            self.stdout.write(f"Seeded {DEMO_INTEGRATION} with the simulator's demo account.")
            current = stored.version
        try:
            check = check_run(package=current.package, trigger=CheckTrigger.COMMAND)
        except CheckError as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"{DEMO_INTEGRATION} · Sandbox: {check.outcome}. {check.message}")

    def _admin(self) -> None:
        # The same one-time-password flow and wording as `make run`.
        call_command("create_first_admin", stdout=self.stdout)


def _demo_version() -> PackageVersion | None:
    """The demo's Sandbox version when it holds the demo account; None when it must be seeded."""
    integration = Integration.objects.filter(name=DEMO_INTEGRATION).first()
    if integration is None:
        return None
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    try:
        if version is not None and version.client_id == DEMO_ACCOUNT.client_id and (
                version.client_secret == DEMO_ACCOUNT.client_secret
                and version.username == DEMO_ACCOUNT.username
                and version.password == DEMO_ACCOUNT.password):
            return version
    except DecryptionError:
        pass  # stored under keys since lost: store the demo values again
    return None
