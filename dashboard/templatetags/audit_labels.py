"""Audit action codes in words on the pages (exports keep the codes)."""

from __future__ import annotations

from django import template

from onboarding.services.audit import audit_action_label

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    """{{ event.action|action_label }}: "login" as "Signed in"."""
    return audit_action_label(action)
