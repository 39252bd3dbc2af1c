"""`manage.py run_checks [--loop] [--interval SECONDS] [--concurrency N]`: scheduled checks."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from onboarding.management.commands._arguments import whole_number
from onboarding.services.schedule import (
    DEFAULT_INTERVAL,
    MAX_CONCURRENCY,
    RoundReport,
    schedule_round,
    schedule_slot,
)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


# A week: longer slots would leave failures unseen for longer than anyone would want, and
# far larger numbers overflow the date arithmetic of the slots.
MAX_INTERVAL = 7 * 24 * 3600


def _interval(value: str) -> int:
    return whole_number(value, low=1, high=MAX_INTERVAL, what="a whole number of seconds")


def _concurrency(value: str) -> int:
    return whole_number(value, low=1, high=MAX_CONCURRENCY, what="a whole number")


class Command(BaseCommand):
    help = (
        "Check every package whose current version has credentials, N at a time. Each package is "
        "checked at most once per interval slot however many workers run; with --loop, repeat "
        "every slot until SIGTERM or Ctrl+C, which finish the round in hand."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true",
                            help="keep running, one round per interval, until SIGTERM/SIGINT")
        parser.add_argument("--interval", type=_interval,
                            default=int(DEFAULT_INTERVAL.total_seconds()), metavar="SECONDS",
                            help="slot length in seconds (default 3600): a package is checked "
                                 "at most once per slot")
        parser.add_argument("--concurrency", type=_concurrency, default=4, metavar="N",
                            help="checks in flight at once (default 4)")
        parser.add_argument("--fetch-me", action="store_true",
                            help="also ask /v1/me who each new token belongs to")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except (OperationalError, InterfaceError) as exc:
            # Exit 1 in one line, not a traceback: systemd restarts the worker, and the journal
            # says why. (Driver messages name the server and user, never a password.)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"The database cannot be reached: {reason}", returncode=1) from None

    def _run(self, options: dict[str, Any]) -> None:
        interval = timedelta(seconds=options["interval"])
        run = {"concurrency": options["concurrency"], "fetch_me": options["fetch_me"]}
        if not options["loop"]:
            report = self._round(interval, run)
            if report.failed or report.not_checked:
                raise CommandError(f"{report.failed} checks failed and "
                                   f"{len(report.not_checked)} could not be run.", returncode=1)
            return
        stop = threading.Event()
        previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()
            # A second signal ends the process at once: the system's default action, not
            # Python's KeyboardInterrupt, which would wait for the worker threads to finish
            # the round. Claims left behind expire with their slot.
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            self.stderr.write("run_checks: stopping after the round in hand; a second signal "
                              "stops at once.")

        for sig in _STOP_SIGNALS:
            signal.signal(sig, request_stop)
        try:
            self.stdout.write(f"run_checks: every {options['interval']} s, "
                              f"{options['concurrency']} at a time; SIGTERM or Ctrl+C stops.")
            while not stop.is_set():
                slot = self._round(interval, run).slot_start
                # No connection idles through the wait: the server or a firewall may drop it,
                # and the next round would start with a dead one.
                connections.close_all()
                wait = (slot + interval - timezone.now()).total_seconds()
                stop.wait(max(0.0, wait))
            self.stdout.write("run_checks: stopped.")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _round(self, interval: timedelta, run: dict[str, Any]) -> RoundReport:
        slot = schedule_slot(now=timezone.now(), interval=interval)
        report = schedule_round(slot_start=slot, **run)
        for reason in report.not_checked:
            self.stderr.write(f"not checked: {reason}")
        self.stdout.write(report.summary())
        self.stdout.flush()  # one line per round reaches the journal at once
        return report
