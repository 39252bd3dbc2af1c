"""Scheduled checks: every package whose current version has credentials, N at a time.

Time is cut into slots of `interval` seconds counted from the Unix epoch, so every worker of a
deployment agrees on when a round begins, however and whenever it was started. A worker claims
packages for the slot with a conditional update of `last_scheduled_at` (only rows not claimed
since the slot began match; `UPDATE ... RETURNING` says which it got), a few at a time, so
several workers, in one process or in several on PostgreSQL, share a round between them and
never check a package twice in it. A package checked by a lead in the meantime is still checked:
the schedule proves the credentials keep working, on its own clock.

The token exchange itself runs in `check_run`, outside any transaction; each worker thread keeps
its own database connection and closes it when it ends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, connections
from django.db.models import F, Q, TextChoices
from django.utils import timezone

from onboarding.models import CheckTrigger, OnboardingPackage, PackageVersion
from onboarding.services.checks import CheckError, check_run

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(hours=1)
MAX_CONCURRENCY = 64
# Packages a worker claims per statement: fewer writes (each a commit that other writers wait
# for), yet small enough that workers of several processes still share a round.
CLAIM_BATCH = 5


class PackageResult(TextChoices):
    """What became of one candidate package in a round (counted into its RoundReport)."""

    OK = "ok", "checked, ok"
    FAILED = "failed", "checked, failed"
    NOT_CHECKED = "not_checked", "could not be checked"
    CLAIMED_ELSEWHERE = "claimed_elsewhere", "claimed by another worker"


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
    # Set when a stop was requested during the round: `left` packages were never handed out
    # (nor claimed, so the next round or another worker checks them).
    interrupted: bool = False
    left: int = 0

    def summary(self) -> str:
        slot = timezone.localtime(self.slot_start).strftime("%Y-%m-%d %H:%M:%S %Z")
        line = (
            f"round of {slot}: checked {self.checked} (ok {self.ok}, failed {self.failed}), "
            f"skipped {self.claimed_elsewhere} claimed elsewhere, "
            f"{len(self.not_checked)} could not be checked, in {self.seconds:.1f} s"
        )
        if self.interrupted:
            line += f"; interrupted, {self.left} left unchecked"
        return line


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


def schedule_claim(*, package_ids: list[int], slot_start: datetime) -> set[int]:
    """Claim these packages for the slot; the ids this call got (not those some worker already
    claimed in the slot). One statement where the database can say which rows it updated."""
    if not package_ids:
        return set()
    stamp = max(timezone.now(), slot_start)
    if not _can_return_updated_rows():
        unclaimed = Q(last_scheduled_at__isnull=True) | Q(last_scheduled_at__lt=slot_start)
        return {
            pk for pk in package_ids
            if OnboardingPackage.objects.filter(unclaimed, pk=pk)
            .update(last_scheduled_at=stamp) == 1
        }
    meta, qn = OnboardingPackage._meta, connection.ops.quote_name
    column = qn(meta.get_field("last_scheduled_at").column)
    pk = qn(meta.pk.column)
    marks = ", ".join(["%s"] * len(package_ids))
    sql = (f"UPDATE {qn(meta.db_table)} SET {column} = %s "  # noqa: S608 -- names from _meta
           f"WHERE {pk} IN ({marks}) AND ({column} IS NULL OR {column} < %s) RETURNING {pk}")
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(stamp), *package_ids, adapt(slot_start)])
        return {row[0] for row in cursor.fetchall()}


def _can_return_updated_rows() -> bool:
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35))


class _Candidates:
    """The round's packages, handed out a few at a time to the worker threads, until `stop` is
    set: then nothing more, so each thread ends once the checks it has in flight are done."""

    def __init__(self, packages: list[OnboardingPackage], workers: int,
                 stop: threading.Event | None = None) -> None:
        self._packages, self._next, self._workers = packages, 0, workers
        self._stop = stop
        self._lock = threading.Lock()

    @property
    def left(self) -> int:
        """Packages not handed out (yet)."""
        with self._lock:
            return len(self._packages) - self._next

    def take(self) -> list[OnboardingPackage]:
        with self._lock:
            if self._stop is not None and self._stop.is_set():
                return []
            left = len(self._packages) - self._next
            # Smaller batches towards the end, so no thread is left with a queue of its own.
            size = max(1, min(CLAIM_BATCH, left // self._workers))
            batch = self._packages[self._next:self._next + size]
            self._next += len(batch)
            return batch


def schedule_round(*, slot_start: datetime, concurrency: int = 4, fetch_me: bool = False,
                   stop: threading.Event | None = None) -> RoundReport:
    """Check every candidate package not yet claimed in this slot, `concurrency` at a time.

    /v1/me is skipped by default: the schedule proves that the credentials still get a token,
    and one request per check halves what counts against iQmetrix's rate limits.

    Once `stop` is set no more packages are handed out: the checks in flight finish, and the
    report is marked interrupted with the number left. Those were never claimed, so a later run
    in the same slot checks them.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
    started = time.monotonic()
    report = RoundReport(slot_start=slot_start)
    packages = schedule_candidates()
    workers = min(concurrency, len(packages))
    if workers:
        candidates = _Candidates(packages, workers, stop)
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run_checks") as pool:
            futures = [pool.submit(_work, candidates, slot_start, report, lock, fetch_me)
                       for _ in range(workers)]
            for future in futures:
                future.result()
        report.left = candidates.left
    report.interrupted = stop is not None and stop.is_set()
    report.seconds = time.monotonic() - started
    return report


def _work(candidates: _Candidates, slot_start: datetime, report: RoundReport,
          lock: threading.Lock, fetch_me: bool) -> None:
    """One worker thread: claim and check batches until none are left; close its connection at
    the end."""
    try:
        while batch := candidates.take():
            try:
                claimed = schedule_claim(package_ids=[p.pk for p in batch],
                                         slot_start=slot_start)
            except Exception as exc:
                logger.error("claiming packages for scheduled checks failed: %s",
                             type(exc).__name__)
                results = [(PackageResult.NOT_CHECKED,
                            f"{p}: the claim failed with an internal error "
                            f"({type(exc).__name__}); see the log.") for p in batch]
            else:
                results = [_check_one(p, fetch_me) if p.pk in claimed
                           else (PackageResult.CLAIMED_ELSEWHERE, "") for p in batch]
            with lock:
                for result, reason in results:
                    _count(report, result, reason)
    finally:
        connections.close_all()


def _count(report: RoundReport, result: PackageResult, reason: str) -> None:
    if result == PackageResult.CLAIMED_ELSEWHERE:
        report.claimed_elsewhere += 1
    elif result == PackageResult.NOT_CHECKED:
        report.not_checked.append(reason)
    else:
        report.checked += 1
        if result == PackageResult.OK:
            report.ok += 1
        else:
            report.failed += 1


def _check_one(package: OnboardingPackage, fetch_me: bool) -> tuple[PackageResult, str]:
    try:
        # check_run reads the current version itself, so a version stored since the round
        # began is the one checked.
        check = check_run(package=package, actor=None, trigger=CheckTrigger.SCHEDULED,
                          fetch_me=fetch_me)
    except CheckError as exc:
        return PackageResult.NOT_CHECKED, f"{package}: {exc}"
    except Exception as exc:
        # One broken package must not stop the round. The class name only: an exception's text
        # is not ours to vouch for (a driver error can quote row values).
        logger.error("scheduled check of package %s failed: %s", package.pk,
                     type(exc).__name__)
        return PackageResult.NOT_CHECKED, (f"{package}: the check stopped with an internal error "
                               f"({type(exc).__name__}); see the log.")
    return (PackageResult.OK if check.ok else PackageResult.FAILED), ""
