"""User accounts: the first administrator and its one-time password."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from onboarding.models import PasswordChangeRequired

FIRST_ADMIN_USERNAME = "admin"


def first_admin_ensure(*, username: str = FIRST_ADMIN_USERNAME) -> tuple[str, str] | None:
    """Create a superuser with a random one-time password when no superuser exists.

    Returns (user name, password) once, for printing; None when an admin already exists, so
    running set-up again keeps accounts as they are.
    """
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(is_superuser=True).exists():
            return None
        # A plain account may already use the name: take the next free one rather than crash.
        base, number = username, 1
        while user_model.objects.filter(username=username).exists():
            number += 1
            username = f"{base}{number}"
        password = secrets.token_urlsafe(18)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        PasswordChangeRequired.objects.create(user=user)
    return username, password


def password_change_required(*, user: Any) -> bool:
    return PasswordChangeRequired.objects.filter(user_id=user.pk).exists()


def password_changed(*, user: Any) -> None:
    PasswordChangeRequired.objects.filter(user_id=user.pk).delete()
