"""`manage.py run_checks [--loop] [--interval SECONDS] [--concurrency N]`: scheduled checks.

Exit status: 0 when every check passed (or, with --loop, after a stop on SIGTERM/SIGINT);
1 when a check failed or could not run, or the database cannot be reached; 2 for bad arguments;
128 + the signal's number (130 for Ctrl+C, 143 for SIGTERM) when a one-off run was interrupted,
as a shell reports a process ended by that signal, so a script or timer sees the run as
incomplete. With --loop, a stop is how the worker is meant to end, hence 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from onboarding.management.commands._arguments import whole_number
from onboarding.management.commands._base import OnboardingCommand
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


class Command(OnboardingCommand):
    _stop_signal: int | None = None  # the signal that asked the run to stop, if one did

    help = (
        "Check every package whose current version has credentials, N at a time. Each package is "
        "checked at most once per interval slot however many workers run; with --loop, repeat "
        "every slot until SIGTERM or Ctrl+C, which finish the round in hand. A one-off run "
        "stopped by SIGTERM or Ctrl+C starts no more checks, lets those in flight finish, prints "
        "its summary and exits 128 + the signal number (130 for Ctrl+C, 143 for SIGTERM). "
        "A second signal stops at once."
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
            self._once(interval, run)
            return
        with self._stop_on_signal("stopping after the round in hand") as stop:
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

    def _once(self, interval: timedelta, run: dict[str, Any]) -> None:
        # Unlike --loop, the stop reaches the round itself: an operator's Ctrl+C on a long
        # one-off run should not wait for every remaining package.
        with self._stop_on_signal("stopping after the checks in flight") as stop:
            report = self._round(interval, {**run, "stop": stop})
        if self._stop_signal is not None:
            name = signal.Signals(self._stop_signal).name
            raise CommandError(f"Interrupted by {name}: {report.left} packages were not checked "
                               "(a later run checks them).", returncode=128 + self._stop_signal)
        if report.failed or report.not_checked:
            raise CommandError(f"{report.failed} checks failed and "
                               f"{len(report.not_checked)} could not be run.", returncode=1)

    @contextmanager
    def _stop_on_signal(self, notice: str) -> Iterator[threading.Event]:
        """An event the first SIGTERM or SIGINT sets (and records in `_stop_signal`), saying
        `notice` on stderr; the signals' previous handlers come back at the end."""
        stop = threading.Event()
        self._stop_signal = None
        # Python lets only the main thread set handlers; called in another one (call_command
        # from a thread), the run simply cannot be stopped early, as before.
        if threading.current_thread() is not threading.main_thread():
            yield stop
            return
        previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()
            self._stop_signal = signum
            # A second signal ends the process at once: the system's default action, not
            # Python's KeyboardInterrupt, which would wait for the worker threads to finish
            # the round. Claims left behind expire with their slot.
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            self.stderr.write(f"run_checks: {notice}; a second signal stops at once.")

        for sig in _STOP_SIGNALS:
            signal.signal(sig, request_stop)
        try:
            yield stop
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
