"""Audit action and environment codes in words on the pages (exports keep the codes)."""

from __future__ import annotations

from django import template

from onboarding.models import Environment
from onboarding.services.audit import audit_action_label, audit_details_words

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    """{{ event.action|action_label }}: "login" as "Signed in"."""
    return audit_action_label(action)


@register.filter
def environment_label(value: str) -> str:
    """{{ event.environment|environment_label }}: "production" as "Production", as on every other
    page; a value that is not an environment (none is written today) stays as it is."""
    try:
        return str(Environment(value).label)
    except ValueError:
        return value


@register.filter
def details_words(details: dict | None) -> str:
    """{{ event.details|details_words }}: the details in words, lists joined, yes/no, none."""
    return audit_details_words(details)
