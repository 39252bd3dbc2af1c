"""Who has Production access (page and CSV), and granting / revoking time-bound access."""

from __future__ import annotations

import contextlib
import csv
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.access import deny, require_oversight
from dashboard.stepup import stepup_confirm, stepup_is_fresh, stepup_mistyped
from onboarding.models import AccessGrant, Environment, Integration, Role
from onboarding.services.access_report import (
    REPORT_COLUMNS,
    access_report,
    access_report_export_record,
)
from onboarding.services.audit import RequestMeta, csv_cell
from onboarding.services.grants import (
    GrantError,
    grant_give,
    grant_may_create,
    grant_may_revoke,
    grant_revoke,
    grant_to_self_refusal,
)
from onboarding.services.reasons import REASON_MAX_LENGTH

REPORT_PERMISSION = "onboarding.view_access_report"


@require_GET
def access_page(request: HttpRequest) -> HttpResponse:
    require_oversight(request, permission=REPORT_PERMISSION)
    return render(request, "dashboard/access_report.html", {
        "rows": access_report(),
        "may_grant": grant_may_create(user=request.user),
        "may_revoke": grant_may_revoke(user=request.user),
        "stepup_fresh": stepup_is_fresh(request),
    })


@require_GET
def access_csv(request: HttpRequest) -> HttpResponse:
    require_oversight(request, permission=REPORT_PERMISSION)
    access_report_export_record(actor=request.user, meta=RequestMeta.from_request(request))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="production-access.csv"'
    writer = csv.DictWriter(response, fieldnames=REPORT_COLUMNS)
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.as_dict().items()}
                     for row in access_report())
    return response


class GrantForm(forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        to_field_name="username")
    role = forms.ChoiceField(choices=Role.choices)
    integration = forms.ModelChoiceField(queryset=Integration.objects.order_by("name"),
                                         required=False, empty_label="All integrations")
    valid_until = forms.DateTimeField(
        label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=REASON_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))
    confirm_password = forms.CharField(required=False, strip=False,
                                       widget=forms.PasswordInput, label="Your password")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The time typed is read in TIME_ZONE, which the person granting may not know: name it
        # (per form, not at import, so it is the zone in force).
        self.fields["valid_until"].help_text = (
            f"e.g. 2026-12-31 18:00, in {timezone.get_current_timezone_name()} time")


def _managers_only(request: HttpRequest, *, allowed: bool, attempted: str,
                   integration: Integration | None = None, target: str = "") -> None:
    """Grant managers pass. Outsiders get 404 (they may not learn the page exists); anyone else
    gets 403, and the refusal is audited as a denied Production attempt, as grant_create and
    grant_revoke audit the same refusal from `grant_access` and `revoke_access`: the views
    refuse before those services run, so they would never write it."""
    if allowed:
        return
    # Http404 for outsiders. Someone who works here but may not see the report is refused
    # below like an auditor: it is still a refused attempt, and audited.
    with contextlib.suppress(PermissionDenied):
        require_oversight(request, permission=REPORT_PERMISSION)
    deny(request, action=attempted, environment=Environment.PRODUCTION, integration=integration,
         target=target)
    # deny's "You may not grant in Production" says less than this does.
    raise PermissionDenied("Only superusers and grant managers may change Production access.")


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("confirm_password")
def grant_new(request: HttpRequest) -> HttpResponse:
    _managers_only(request, allowed=grant_may_create(user=request.user), attempted="grant")
    form = GrantForm(request.POST or None)
    error = ""
    if request.method == "POST" and request.POST.get("user") == request.user.get_username():
        # Refused and audited before the rest of the form is looked at: see the service.
        error = grant_to_self_refusal(user=request.user, granted_by=request.user,
                                      meta=RequestMeta.from_request(request)) or ""
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        password = data["confirm_password"] or None
        if not stepup_confirm(request, password=password):
            error = (stepup_mistyped(not_done="nothing was granted") if password
                     else "Confirm your password to grant access.")
        else:
            try:
                given = grant_give(user=data["user"], role=data["role"],
                                   valid_until=data["valid_until"], reason=data["reason"],
                                   granted_by=request.user, integration=data["integration"],
                                   meta=RequestMeta.from_request(request))
            except GrantError as exc:
                if exc.field in form.fields:
                    form.add_error(exc.field, str(exc))
                else:
                    error = str(exc)
            else:
                grant = given.grant
                if given.new:
                    messages.success(request, f"Granted {grant.role} to {grant.user} as grant "
                                              f"#{grant.pk}.")
                else:
                    # A second click: say what is true (granted once), not "Granted" again
                    # under the same number, as if there were now two grants to revoke.
                    messages.success(request, f"You already granted {grant.role} to "
                                              f"{grant.user} as grant #{grant.pk}; nothing was "
                                              "granted twice.")
                return redirect("dashboard:access")
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboard/grant_form.html", {
        "form": form, "error": error, "stepup_fresh": stepup_is_fresh(request),
    }, status=status)


@require_POST
@sensitive_post_parameters("confirm_password")
def grant_end(request: HttpRequest, uuid: UUID) -> HttpResponse:
    # The grant first, so the refusal names it and its integration, as revoke_access's does;
    # an unknown uuid is a 404 for everyone, which tells an outsider nothing either.
    grant = get_object_or_404(AccessGrant.objects.select_related("user", "integration"),
                              uuid=uuid)
    _managers_only(request, allowed=grant_may_revoke(user=request.user), attempted="revoke",
                   integration=grant.integration, target=f"grant #{grant.pk}")
    password = request.POST.get("confirm_password") or None
    if not stepup_confirm(request, password=password):
        # The page lists many grants: name the one that stayed, and whether the password was
        # wrong or missing, as the reveal page does ("That password is not right, …").
        named = f"grant #{grant.pk} ({grant.user})"
        messages.error(request, stepup_mistyped(not_done=f"{named} was not revoked") if password
                       else f"Confirm your password to revoke {named}; nothing was revoked.")
        return redirect("dashboard:access")
    try:
        grant_revoke(grant=grant, revoked_by=request.user,
                     meta=RequestMeta.from_request(request))
    except GrantError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Revoked grant #{grant.pk} of {grant.user}.")
    return redirect("dashboard:access")

