"""Reveal a secret, copy the live token, export a Postman environment.

Each one writes its audit event first, inside the transaction that then reads the value: if the
event cannot be written, the value is never decrypted nor returned. Events name the field, never
its value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from onboarding import __version__
from onboarding.crypto import DecryptionError
from onboarding.iqmetrix import TOKEN_PATH
from onboarding.models import ConnectivityCheck, OnboardingPackage, PackageVersion, Role
from onboarding.services.access import require
from onboarding.services.audit import AuditAction, RequestMeta, audit_record
from onboarding.services.checks import check_live_token
from onboarding.services.fields import field_label
from onboarding.services.packages import UNREADABLE

REVEALABLE = PackageVersion.CREDENTIAL_FIELDS
# The reveal page's choices, as its form lists them: the credentials only, each capitalised.
FIELD_LABELS = {name: field_label(name, capitalised=True) for name in REVEALABLE}


class RevealError(Exception):
    """Nothing to reveal, or it cannot be read; one plain sentence."""


@dataclass(frozen=True)
class LiveToken:
    token: str = field(repr=False)
    expires_at: datetime
    fingerprint: str


def _current(package: OnboardingPackage) -> PackageVersion:
    if package.current_version is None:
        raise RevealError("This package has no version yet.")
    return package.current_version


def _target(package: OnboardingPackage) -> dict[str, Any]:
    return {"integration": package.integration, "environment": package.environment}


def secret_reveal(*, package: OnboardingPackage, field_name: str, actor: Any,
                  meta: RequestMeta | None = None) -> str | None:
    """One credential of the current version, for a user with the reveal role. None: not set."""
    require(user=actor, action=Role.REVEAL, environment=package.environment,
            integration=package.integration)
    if field_name not in REVEALABLE:
        raise RevealError("Choose one of the package's credentials to reveal.")
    version = _current(package)
    with transaction.atomic():
        audit_record(action=AuditAction.REVEAL, actor=actor, meta=meta, **_target(package),
                     target=f"v{version.number} {field_name}",
                     details={"field": field_name, "version": version.number})
        try:
            return getattr(version, field_name)
        except DecryptionError:
            raise RevealError(f"The {field_label(field_name)} {UNREADABLE}.") from None


def token_copy(*, package: OnboardingPackage, actor: Any,
               meta: RequestMeta | None = None) -> LiveToken:
    """The live access token of the last passing check, while it is valid."""
    require(user=actor, action=Role.REVEAL, environment=package.environment,
            integration=package.integration)
    with transaction.atomic():
        check = _still_held(check_live_token(package=package))
        if check is None:
            raise RevealError("There is no live token: run a check first.")
        audit_record(action=AuditAction.TOKEN_COPY, actor=actor, meta=meta, **_target(package),
                     target=f"check {check.uuid}",
                     details={"field": "access_token", "check": str(check.uuid),
                              "fingerprint": check.token_fingerprint,
                              "expires_at": check.expires_at})
        try:
            token = check.access_token
        except DecryptionError:
            raise RevealError(f"The access token {UNREADABLE}.") from None
    return LiveToken(token=token, expires_at=check.expires_at, fingerprint=check.token_fingerprint)


def _still_held(check: ConnectivityCheck | None) -> ConnectivityCheck | None:
    """`check` read again under a row lock, or None if a newer check has cleared its token since
    (it clears older tokens under the same lock): only a token still stored leaves the server."""
    if check is None:
        return None
    return (ConnectivityCheck.objects.select_for_update()
            .filter(pk=check.pk, access_token__isnull=False).first())


def _variable(key: str, value: Any, *, secret: bool) -> dict[str, Any]:
    return {"key": key, "value": "" if value is None else str(value),
            "type": "secret" if secret else "default", "enabled": True}


def postman_environment(*, package: OnboardingPackage, actor: Any,
                        meta: RequestMeta | None = None) -> dict[str, Any]:
    """A Postman environment (its export format) with the credentials and the live token."""
    require(user=actor, action=Role.REVEAL, environment=package.environment,
            integration=package.integration)
    version = _current(package)
    base = settings.IQMETRIX_ACCOUNTS_URLS[package.environment]
    with transaction.atomic():
        check = _still_held(check_live_token(package=package))
        names = ["accounts_url", "token_url", *REVEALABLE] + (["access_token"] if check else [])
        audit_record(action=AuditAction.EXPORT, actor=actor, meta=meta, **_target(package),
                     target=f"v{version.number} postman",
                     details={"format": "postman_environment", "version": version.number,
                              "fields": names})
        try:
            secrets = {name: getattr(version, name) for name in REVEALABLE}
            token = check.access_token if check else None
        except DecryptionError:
            raise RevealError(f"A credential of this package {UNREADABLE}.") from None
    values = [
        _variable("accounts_url", base, secret=False),
        _variable("token_url", f"{base}{TOKEN_PATH}", secret=False),
        *(_variable(name, secrets[name], secret=name in PackageVersion.SECRET_FIELDS)
          for name in REVEALABLE),
    ]
    if token is not None:
        values.append(_variable("access_token", token, secret=True))
    return {
        "id": str(uuid.uuid4()),
        "name": f"{package.integration.name} {package.get_environment_display()}",
        "values": values,
        "_postman_variable_scope": "environment",
        "_postman_exported_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "_postman_exported_using": f"Aisle Keys/{__version__}",
    }


def postman_filename(*, package: OnboardingPackage) -> str:
    return f"{package.integration.slug}-{package.environment}.postman_environment.json"
