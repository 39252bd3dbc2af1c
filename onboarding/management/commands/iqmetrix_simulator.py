"""`manage.py iqmetrix_simulator`: serve the local stand-in for the iQmetrix accounts host."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser

from onboarding.management.commands._arguments import whole_number
from onboarding.management.commands._base import OnboardingCommand
from onboarding.simulator import DEMO_ACCOUNT, Simulator, load_accounts


def _port(value: str) -> int:
    # Checked here, as a usage error: bind() raises OverflowError, not OSError, above 65535.
    return whole_number(value, low=0, high=65535, what="a port number",
                        note=" (0: any free one)")


def _latency(value: str) -> int:
    # A minute is longer than any client waits; far larger values overflow time.sleep().
    return whole_number(value, low=0, high=60_000, what="a number of milliseconds")


class Command(OnboardingCommand):
    help = (
        "Serve a local stand-in for the iQmetrix accounts host (token exchange, /v1/me, /v1/ping) "
        "until interrupted. Point IQMETRIX_SANDBOX_ACCOUNTS_URL at the URL it prints."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=_port, default=8765,
                            help="port to listen on (default 8765; 0 picks a free one)")
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--accounts", metavar="FILE",
                            help="JSON list of accounts {client_id, client_secret, username, "
                                 "password}; default: the public demo account")
        parser.add_argument("--latency-ms", type=_latency, default=0,
                            help="delay every answer by this many milliseconds")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = None
        if options["accounts"]:
            try:
                accounts = load_accounts(options["accounts"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        simulator = Simulator(host=options["host"], port=options["port"], accounts=accounts,
                              latency_ms=options["latency_ms"])
        try:
            simulator.bind()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}."
            ) from None

        self.stdout.write(f"iQmetrix simulator listening on {simulator.url}")
        if accounts is None:
            # Public demo values (see DEMO_ACCOUNT); the secret and password are documented there.
            self.stdout.write(
                f"Demo account: client ID {DEMO_ACCOUNT.client_id}, user name "
                f"{DEMO_ACCOUNT.username} (client secret and password: DEMO_ACCOUNT in "
                "onboarding/simulator.py)."
            )
        else:
            self.stdout.write(f"{len(accounts)} account(s) from {options['accounts']}: "
                              + ", ".join(f"{a.client_id} / {a.username}" for a in accounts))
        self.stdout.write("Press Ctrl+C to stop.")
        self.stdout.flush()  # the URL must reach a pipe (scripts, tests) before serving blocks

        # SIGTERM (docker stop, systemd) ends it like Ctrl+C; serve_forever closes the socket.
        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            simulator.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("iQmetrix simulator stopped.")
        finally:
            signal.signal(signal.SIGTERM, previous)
