"""Scheduled checks: every package whose current version has credentials, N at a time.

Time is cut into slots of `interval` seconds counted from the Unix epoch, so every worker of a
deployment agrees on when a round begins, however and whenever it was started. A worker claims a
package for the slot with one conditional update of `last_scheduled_at` (only a row not claimed
since the slot began matches), so several workers, in one process or in several on PostgreSQL,
share a round between them and never check a package twice in it. A package checked by a lead in
the meantime is still checked: the schedule proves the credentials keep working, on its own clock.

The token exchange itself runs in `check_run`, outside any transaction; each worker thread keeps
its own database connection and closes it when it ends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connections
from django.db.models import F, Q
from django.utils import timezone

from onboarding.models import CheckTrigger, OnboardingPackage, PackageVersion
from onboarding.services.checks import CheckError, check_run

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(hours=1)
MAX_CONCURRENCY = 64


@dataclass
class RoundReport:
    """What one worker did in one round. `claimed_elsewhere` counts packages another worker (or an
    earlier run in the same slot) had already claimed."""

    slot_start: datetime
    checked: int = 0
    ok: int = 0
    failed: int = 0
    claimed_elsewhere: int = 0
    not_checked: list[str] = field(default_factory=list)  # one plain sentence each
    seconds: float = 0.0

    def summary(self) -> str:
        slot = timezone.localtime(self.slot_start).strftime("%Y-%m-%d %H:%M:%S %Z")
        return (
            f"round of {slot}: checked {self.checked} (ok {self.ok}, failed {self.failed}), "
            f"skipped {self.claimed_elsewhere} claimed elsewhere, "
            f"{len(self.not_checked)} could not be checked, in {self.seconds:.1f} s"
        )


def schedule_slot(*, now: datetime, interval: timedelta) -> datetime:
    """The start of the slot `now` falls in: a multiple of `interval` since the epoch."""
    step = interval.total_seconds()
    if step <= 0:
        raise ValueError("The interval must be positive.")
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - seconds % step, tz=UTC)


def schedule_candidates() -> list[OnboardingPackage]:
    """Packages whose current version holds all four credentials, with their integration (one
    query for the round), least recently scheduled first (never scheduled before anything)."""
    has_credentials = Q(**{
        f"current_version__{name}__isnull": False for name in PackageVersion.CREDENTIAL_FIELDS
    })
    return list(
        OnboardingPackage.objects.filter(has_credentials).select_related("integration")
        .order_by(F("last_scheduled_at").asc(nulls_first=True), "pk")
    )


def schedule_claim(*, package_id: int, slot_start: datetime) -> bool:
    """Claim one package for this slot; False if some worker already claimed it in the slot."""
    unclaimed = Q(last_scheduled_at__isnull=True) | Q(last_scheduled_at__lt=slot_start)
    claimed = (
        OnboardingPackage.objects.filter(unclaimed, pk=package_id)
        .update(last_scheduled_at=max(timezone.now(), slot_start))
    )
    return claimed == 1


def schedule_round(*, slot_start: datetime, concurrency: int = 4,
                   fetch_me: bool = False) -> RoundReport:
    """Check every candidate package not yet claimed in this slot, `concurrency` at a time.

    /v1/me is skipped by default: the schedule proves that the credentials still get a token,
    and one request per check halves what counts against iQmetrix's rate limits.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
    started = time.monotonic()
    report = RoundReport(slot_start=slot_start)
    todo: queue.SimpleQueue[OnboardingPackage] = queue.SimpleQueue()
    candidates = schedule_candidates()
    for package in candidates:
        todo.put(package)
    lock = threading.Lock()
    workers = min(concurrency, len(candidates))
    if workers:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run_checks") as pool:
            futures = [pool.submit(_work, todo, slot_start, report, lock, fetch_me)
                       for _ in range(workers)]
            for future in futures:
                future.result()
    report.seconds = time.monotonic() - started
    return report


def _work(todo: queue.SimpleQueue[OnboardingPackage], slot_start: datetime, report: RoundReport,
          lock: threading.Lock, fetch_me: bool) -> None:
    """One worker thread: take packages until none are left; close its connection at the end."""
    try:
        while True:
            try:
                package = todo.get_nowait()
            except queue.Empty:
                return
            result, reason = _check_one(package, slot_start, fetch_me)
            with lock:
                if result == "claimed_elsewhere":
                    report.claimed_elsewhere += 1
                elif result == "not_checked":
                    report.not_checked.append(reason)
                else:
                    report.checked += 1
                    if result == "ok":
                        report.ok += 1
                    else:
                        report.failed += 1
    finally:
        connections.close_all()


def _check_one(package: OnboardingPackage, slot_start: datetime, fetch_me: bool
               ) -> tuple[str, str]:
    name = str(package)
    try:
        if not schedule_claim(package_id=package.pk, slot_start=slot_start):
            return "claimed_elsewhere", ""
        # check_run reads the current version itself, so a version stored since the round
        # began is the one checked.
        check = check_run(package=package, actor=None, trigger=CheckTrigger.SCHEDULED,
                          fetch_me=fetch_me)
    except CheckError as exc:
        return "not_checked", f"{name}: {exc}"
    except Exception as exc:
        # One broken package must not stop the round. The class name only: an exception's text
        # is not ours to vouch for (a driver error can quote row values).
        logger.error("scheduled check of package %s failed: %s", package.pk,
                     type(exc).__name__)
        return "not_checked", (f"{name}: the check stopped with an internal error "
                               f"({type(exc).__name__}); see the log.")
    return ("ok" if check.ok else "failed"), ""
