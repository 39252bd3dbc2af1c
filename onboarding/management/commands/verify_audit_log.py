from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from onboarding.management.commands._base import OnboardingCommand
from onboarding.services.audit import audit_event_place, audit_verify, terminal_text


class Command(OnboardingCommand):
    help = "Check the audit log's HMAC chain: exit 0 when intact, 1 naming the first bad event."

    def handle(self, *args: Any, **options: Any) -> None:
        verdict = audit_verify()
        if not verdict.ok:
            # Values read from a tampered row (its action, its seq) are whatever was written
            # there: shown escaped, never run by the terminal.
            raise CommandError(terminal_text(
                f"Audit log NOT intact after {verdict.checked} good events: "
                f"{_where(verdict.bad_event_id)}{verdict.reason}."), returncode=1)
        self.stdout.write(f"Audit log intact: {verdict.checked} events.")
        # Kept somewhere else (a log shipper, a ticket), this line shows a later rollback of the
        # whole database, head included, to an older copy: the count and HMAC would go back.
        head = verdict.head
        if head is not None and head.last_hmac:
            self.stdout.write(f"Head: event {head.events}, HMAC {head.last_hmac}.")


def _where(event_id: int | None) -> str:
    """The bad event, as "event id 7 (seq 7, check): "; nothing when the fault is not one
    event's (the head itself is missing or altered before any event)."""
    if event_id is None:
        return ""
    found = audit_event_place(event_id=event_id)
    if found is None:
        return f"event id {event_id}: "
    seq, action = found
    return f"event id {event_id} (seq {seq}, {action}): "
