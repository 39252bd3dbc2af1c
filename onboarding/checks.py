"""System checks: a missing or malformed key is reported by name before anything runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from onboarding.crypto import KeyConfigurationError, parse_keys


@register()
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    try:
        parse_keys(getattr(settings, "FIELD_ENCRYPTION_KEYS", ""))
    except KeyConfigurationError as exc:
        errors.append(Error(str(exc), hint="Format: keyid:urlsafe-base64-of-32-bytes, newest "
                            "first, comma-separated.", id="aislekeys.E001"))
    if len(getattr(settings, "AUDIT_HMAC_KEY", "") or "") < 32:
        errors.append(Error("AUDIT_HMAC_KEY is missing or shorter than 32 characters.",
                            id="aislekeys.E002"))
    return errors
