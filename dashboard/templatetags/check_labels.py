"""A check's outcome in words on the pages that list checks (the card, the history tables)."""

from __future__ import annotations

from django import template

from onboarding.models import ConnectivityCheck
from onboarding.services.status import check_outcome_label

register = template.Library()


@register.filter
def outcome_label(check: ConnectivityCheck) -> str:
    """{{ check|outcome_label }}: as `get_outcome_display`, except that a refused refresh token
    reads "Refresh token refused", not "Invalid user name or password"."""
    return check_outcome_label(check=check)
