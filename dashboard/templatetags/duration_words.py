"""{{ timedelta|duration_words }}: a duration as the token client's messages say one ("15 minutes",
"about 2 hours"), so the pages and the check outcomes count time the same way."""

from __future__ import annotations

from datetime import timedelta

from django import template

from onboarding.iqmetrix_wire import in_words

register = template.Library()


@register.filter
def duration_words(duration: timedelta | None) -> str:
    return in_words(duration.total_seconds()) if duration else ""
