"""The one rule for the free-text reasons that promotions, rollbacks and grants keep.

A reason is stored in its row and copied into the audit event, so it must be there, fit what a
reviewer reads (and what the forms' maxlength allows), and be storable: PostgreSQL text cannot
hold a NUL character. Forms check the same limit for their own messages; this is the rule the
services enforce for every caller (commands, the admin, the dashboard, scripts).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

REASON_MAX_LENGTH = 2000
# How long after a grant, promotion or rollback the same person's identical request (the same
# reason too) counts as that request posted again (a double click, a resent form) rather than
# a new decision.
REPEAT_WINDOW = timedelta(minutes=2)


def is_repeat(*, done_at: datetime, done_reason: str, reason: str | None) -> bool:
    """Is a request with `reason` the one done at `done_at` with `done_reason`, posted again?
    A later one, or one with another reason, is a new decision: it is refused or done on its
    own grounds and audited, never answered with the old record."""
    return ((reason or "").strip() == done_reason
            and done_at >= timezone.now() - REPEAT_WINDOW)


def reason_refusal(reason: str | None, *, what: str) -> str | None:
    """Why `reason` (as it will be stored: stripped) cannot be kept, in one sentence; or None."""
    text = (reason or "").strip()
    if not text:
        return f"Give a reason for the {what}."
    if len(text) > REASON_MAX_LENGTH:
        return (f"The reason for the {what} has {len(text):,} characters; "
                f"keep it to {REASON_MAX_LENGTH:,}.")
    if "\x00" in text:
        return f"The reason for the {what} contains a null character; remove it."
    return None
