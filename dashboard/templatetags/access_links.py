"""Template tags for the reveal and access links, shown only to users `can()` allows."""

from __future__ import annotations

from typing import Any

from django import template

from onboarding.models import OnboardingPackage, Role
from onboarding.services.access import can

register = template.Library()


@register.simple_tag(takes_context=True)
def may_reveal(context: template.Context, package: OnboardingPackage | None) -> bool:
    """{% may_reveal package as allowed %}: may the user reveal / export this package?"""
    user: Any = context.get("user")
    return package is not None and can(user=user, action=Role.REVEAL,
                                       environment=package.environment,
                                       integration=package.integration)
