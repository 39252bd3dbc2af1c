"""Step-up confirmation: sensitive actions ask for the password again when the last
confirmation is older than SUDO_MINUTES. Forms of such actions carry a `confirm_password` field
shown when `stepup_is_fresh()` is False; the view calls `stepup_confirm()` before acting."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from onboarding.services.audit import AuditAction, RequestMeta, audit_record

SESSION_KEY = "aislekeys_stepup_at"


def stepup_mistyped(*, not_done: str) -> str:
    """The refusal of a wrong step-up password, saying what did not happen ("nothing was
    shown"), in the same words on every page that asks for it."""
    return (f"That password is not right, so {not_done}. Enter it again (wrong passwords count "
            "towards the pause after repeated failed sign-ins).")


def stepup_is_fresh(request: HttpRequest) -> bool:
    confirmed = request.session.get(SESSION_KEY)
    return confirmed is not None and time.time() - float(confirmed) < settings.SUDO_MINUTES * 60


def stepup_confirm(request: HttpRequest, *, password: str | None) -> bool:
    """True when the session is fresh or `password` is the user's; records the confirmation.

    Goes through authenticate() so django-axes counts wrong passwords here too.
    """
    if stepup_is_fresh(request):
        return True
    if not password:
        return False
    user = authenticate(request, username=request.user.get_username(), password=password)
    if user is None or user.pk != request.user.pk:
        return False
    stepup_mark_fresh(request)
    with transaction.atomic():
        audit_record(action=AuditAction.STEP_UP, actor=request.user,
                     meta=RequestMeta.from_request(request))
    return True


def stepup_mark_fresh(request: HttpRequest) -> None:
    """The user has just proved their password (here, or by changing it): the next sensitive
    action within SUDO_MINUTES does not ask again."""
    request.session[SESSION_KEY] = time.time()


def stepup_redirect(request: HttpRequest) -> HttpResponse:
    """Send the user to confirm their password, then back to where they were."""
    query = urlencode({"next": request.get_full_path()})
    return redirect(f"{reverse('dashboard:confirm_password')}?{query}")
