"""Template tags for the links to the package form, so cards and pages show "Add" / "Edit" only
to users who may use them (the same `can()` every view asks)."""

from __future__ import annotations

from typing import Any

from django import template

from onboarding.models import Environment, Integration, Role
from onboarding.services.access import can

register = template.Library()


@register.simple_tag(takes_context=True)
def may_edit(context: template.Context, environment: Environment | str,
             integration: Integration | None = None) -> bool:
    """{% may_edit env integration as allowed %}: may the user store a version there?"""
    user: Any = context.get("user")
    return can(user=user, action=Role.EDIT, environment=environment, integration=integration)
