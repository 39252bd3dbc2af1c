"""Resolving the names a command is given: an integration by name or slug, a user by user name.
Unknown names are refusals (exit 1), like every other reason a command does not go ahead."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from onboarding.models import Integration
from onboarding.services.packages import integration_find


def integration_named(name: str) -> Integration:
    try:
        return integration_find(name_or_slug=name)
    except Integration.DoesNotExist:
        raise CommandError(f"No integration is named '{name}'.", returncode=1) from None


def actor_named(username: str) -> Any:
    User = get_user_model()
    try:
        user = User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist:
        raise CommandError(f"No user is named '{username}'.", returncode=1) from None
    if not user.is_active:
        raise CommandError(f"The user '{username}' is inactive.", returncode=1)
    return user
