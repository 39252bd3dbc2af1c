"""Production history of one integration, and rolling back to an earlier version from it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import integration_for, require_for
from dashboard.stepup import stepup_confirm, stepup_is_fresh
from onboarding.models import Environment, Integration, Role
from onboarding.services.access import can
from onboarding.services.audit import RequestMeta
from onboarding.services.promotion import (
    PromotionRefused,
    production_versions,
    promotion_history,
    rollback_apply,
)
from onboarding.services.reasons import REASON_MAX_LENGTH

PRODUCTION = Environment.PRODUCTION


class RollbackForm(forms.Form):
    to_version = forms.IntegerField(min_value=1, error_messages={
        "required": "Choose the version to roll back to.",
        "invalid": "Choose the version to roll back to."})
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, error_messages={
        "required": "Give a reason for the rollback."})
    # The version the page showed as current: the choice of where to go back to was made
    # against it, so the service refuses if another became current since.
    current_version = forms.IntegerField(min_value=1, error_messages=dict.fromkeys(
        ("required", "invalid", "min_value"),
        "This page was out of date: look at the versions again and choose."))
    confirm_password = forms.CharField(required=False, strip=False)


def _page(request: HttpRequest, integration: Integration, *, errors: list[str] | None = None,
          status: int = 200, reviewed: int | None = None) -> HttpResponse:
    """The history page; its rollback forms carry `reviewed` as the current version they were
    chosen against, or (None) the current version this page shows."""
    versions = production_versions(integration=integration)
    current = next((row.version.number for row in versions if row.current), None)
    context: dict[str, Any] = {
        "integration": integration,
        "versions": versions,
        "reviewed_current": reviewed if reviewed is not None else current,
        "promotions": promotion_history(integration=integration),
        "may_roll_back": can(user=request.user, action=Role.PROMOTE, environment=PRODUCTION,
                             integration=integration),
        "stepup_fresh": stepup_is_fresh(request),
        "errors": errors or [],
        # A refused rollback shows its form again as it was posted, reason included.
        "reason": request.POST.get("reason", ""),
        "posted_version": request.POST.get("to_version", ""),
        "reason_max_length": REASON_MAX_LENGTH,
    }
    return render(request, "dashboard/production_history.html", context, status=status)


@require_GET
def production_history(request: HttpRequest, uuid: UUID) -> HttpResponse:
    return _page(request, integration_for(request, uuid=uuid, environment=PRODUCTION))


@sensitive_post_parameters("confirm_password")
@require_POST
def production_rollback(request: HttpRequest, uuid: UUID) -> HttpResponse:
    integration = integration_for(request, uuid=uuid, environment=PRODUCTION)
    require_for(request, action=Role.PROMOTE, environment=PRODUCTION, integration=integration)
    form = RollbackForm(request.POST)
    # Shown again for another try, a form keeps the version it was first reviewed against, so
    # a change landing meanwhile is still caught; after the service's refusal the page shows
    # Production as it is now, and that is what the next try is reviewed against.
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        return _page(request, integration, errors=errors, status=400,
                     reviewed=form.cleaned_data.get("current_version"))
    reviewed = form.cleaned_data["current_version"]
    if not stepup_confirm(request, password=form.cleaned_data["confirm_password"]):
        return _page(request, integration, status=403, reviewed=reviewed, errors=[
            "Your password was not confirmed; nothing was changed. Enter it again."])
    try:
        rollback = rollback_apply(
            integration=integration, actor=request.user,
            to_version_number=form.cleaned_data["to_version"],
            reason=form.cleaned_data["reason"], reviewed_current=reviewed,
            meta=RequestMeta.from_request(request))
    except PromotionRefused as exc:
        return _page(request, integration, errors=exc.reasons, status=400)
    messages.success(request, f"Rolled Production back to v{rollback.source_version.number} "
                              f"as version {rollback.new_version.number}; it is unverified "
                              "until a Production check passes.")
    return redirect("dashboard:production_history", uuid=integration.uuid)
