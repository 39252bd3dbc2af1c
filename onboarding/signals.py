"""Sign-in events reach the audit log only through Django's and django-axes' signals; the
receivers stay thin and hand over to the audit service."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from onboarding.services.audit import AuditAction, RequestMeta, audit_record


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, meta=RequestMeta.from_request(request))


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, actor=user, meta=RequestMeta.from_request(request))


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Django already replaces the password in `credentials`; only the user name is kept.
    with transaction.atomic():
        audit_record(action=AuditAction.LOGIN_FAILED, meta=RequestMeta.from_request(request),
                     target=str(credentials.get("username", ""))[:150])


@receiver(user_locked_out)
def audit_lockout(sender: Any, request: Any = None, username: str | None = None,
                  ip_address: str | None = None, **kwargs: Any) -> None:
    audit_record(action=AuditAction.LOCKOUT, meta=RequestMeta.from_request(request),
                 target=(username or "")[:150])
