"""Reveal a credential, copy the live token, download a Postman environment.

All three are POST actions behind the reveal role and a fresh password confirmation. The value
appears only in the response to that POST (never cached); the audit event is written first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from uuid import UUID

from django import forms
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import package_for
from dashboard.stepup import stepup_confirm, stepup_is_fresh, stepup_mistyped
from onboarding.models import OnboardingPackage, Role
from onboarding.services.audit import RequestMeta
from onboarding.services.checks import check_live_token
from onboarding.services.reveal import (
    FIELD_LABELS,
    RevealError,
    postman_environment,
    postman_filename,
    secret_reveal,
    token_copy,
)
from onboarding.services.status import check_expired_token

AUDIT_DOWN = "The audit log could not be written, so nothing was revealed. Try again later."


class StepUpForm(forms.Form):
    confirm_password = forms.CharField(required=False, strip=False, widget=forms.PasswordInput,
                                       label="Your password")


class RevealForm(StepUpForm):
    field = forms.ChoiceField(choices=list(FIELD_LABELS.items()))


def _page(request: HttpRequest, package: OnboardingPackage, *, error: str = "",
          status: int = 200) -> HttpResponse:
    # A refused reveal (wrong password) shows the page again with the credential that was
    # chosen, not the first one: retyping the password must not reveal another field.
    chosen = request.POST.get("field", "")
    live_check = check_live_token(package=package)
    return render(request, "dashboard/reveal.html", {
        "package": package, "fields": FIELD_LABELS.items(), "error": error,
        "chosen": chosen if chosen in FIELD_LABELS else "",
        "stepup_fresh": stepup_is_fresh(request), "live_check": live_check,
        # The card this page is opened from shows an expired token as "expired": so does this
        # page, rather than only "no live token" as if there had never been one.
        "expired_check": None if live_check else check_expired_token(package=package),
    }, status=status)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["Pragma"] = "no-cache"
    return response


class _NotConfirmed(Exception):
    """The password confirmation is missing or wrong; the message says what to do."""


MISTYPED = stepup_mistyped(not_done="nothing was shown")


def _confirm(request: HttpRequest, form: forms.Form, *, error: str) -> None:
    """Raise _NotConfirmed with what to do: the password typed was wrong, or one is needed."""
    if not form.is_valid():
        raise _NotConfirmed(error)
    password = form.cleaned_data.get("confirm_password") or None
    if not stepup_confirm(request, password=password):
        raise _NotConfirmed(MISTYPED if password else error)


def _reveal_action(view: Callable[[HttpRequest, OnboardingPackage], HttpResponse]
                   ) -> Callable[[HttpRequest, UUID], HttpResponse]:
    """The shared frame of the three actions: reveal role, step-up, refusals shown on the reveal
    page (nothing revealed), and a response no cache keeps."""

    @wraps(view)
    @require_POST
    @sensitive_post_parameters("confirm_password")
    def action(request: HttpRequest, uuid: UUID) -> HttpResponse:
        package = package_for(request, uuid=uuid, action=Role.REVEAL)
        try:
            return _no_store(view(request, package))
        except _NotConfirmed as exc:
            return _page(request, package, error=str(exc), status=403)
        except RevealError as exc:
            return _page(request, package, error=str(exc), status=409)
        except DatabaseError:
            return _page(request, package, error=AUDIT_DOWN, status=503)

    return action


@require_GET
def reveal_page(request: HttpRequest, uuid: UUID) -> HttpResponse:
    return _page(request, package_for(request, uuid=uuid, action=Role.REVEAL))


@_reveal_action
def reveal_secret(request: HttpRequest, package: OnboardingPackage) -> HttpResponse:
    form = RevealForm(request.POST)
    _confirm(request, form, error="Confirm your password (and choose a field) to reveal a value.")
    name = form.cleaned_data["field"]
    value = secret_reveal(package=package, field_name=name, actor=request.user,
                          meta=RequestMeta.from_request(request))
    return render(request, "dashboard/reveal_value.html", {
        "package": package, "label": FIELD_LABELS[name], "value": value,
    })


@_reveal_action
def reveal_token(request: HttpRequest, package: OnboardingPackage) -> HttpResponse:
    _confirm(request, StepUpForm(request.POST), error="Confirm your password to copy the token.")
    live = token_copy(package=package, actor=request.user, meta=RequestMeta.from_request(request))
    return render(request, "dashboard/reveal_value.html", {
        "package": package, "label": "Access token", "value": live.token,
        "expires_at": live.expires_at,
    })


@_reveal_action
def postman_export(request: HttpRequest, package: OnboardingPackage) -> HttpResponse:
    _confirm(request, StepUpForm(request.POST),
             error="Confirm your password to download the Postman environment.")
    body = postman_environment(package=package, actor=request.user,
                               meta=RequestMeta.from_request(request))
    response = HttpResponse(json.dumps(body, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{postman_filename(package=package)}"'
    return response
