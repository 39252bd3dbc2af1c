"""Admin actions "Promote to Production" and "Roll back Production…" on the integrations list.

Like Django's delete action: the first POST shows a confirmation page, which posts back with the
same `action` and `_selected_action` plus `post`. The promotion service does all the deciding;
these functions only collect the choices, confirm the password when the step-up is stale, and
show what happened.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from dashboard.access import deny
from dashboard.stepup import stepup_confirm, stepup_is_fresh
from onboarding.models import Environment, Integration, Role
from onboarding.services.audit import RequestMeta
from onboarding.services.promotion import (
    PromotionRefused,
    production_versions,
    promotion_apply,
    promotion_offered,
    promotion_preview,
    rollback_apply,
)
from onboarding.services.reasons import REASON_MAX_LENGTH

TEMPLATES = "admin/onboarding/integration/"
STEPUP_FAILED = "Your password was not confirmed; nothing was changed. Enter it again."
NO_REASON = "Give a reason; nothing was changed."
# The service's reason rule (onboarding/services/reasons.py) as a form field, checked before the
# step-up so that a refusal writes no audit event, and worded as the dashboard's forms word it.
_REASON = forms.CharField(max_length=REASON_MAX_LENGTH)


def _context(modeladmin: admin.ModelAdmin, request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "needs_password": not stepup_is_fresh(request),
        "media": modeladmin.media,
        **extra,
    }


ACTIONS = ("promote_to_production", "roll_back_production")


def require_offered(request: HttpRequest) -> None:
    """403, audited: get_actions hides these actions, so a POST naming them is forged."""
    if not promotion_offered(user=request.user):
        raise deny(request, action=Role.PROMOTE, environment=Environment.PRODUCTION,
                   integration=None, target="admin action")


def _confirmed(request: HttpRequest, errors: list[str]) -> bool:
    """The reason is there and the password confirmed; otherwise say why in `errors`."""
    reason = request.POST.get("reason", "")
    if not reason.strip():
        errors.append(NO_REASON)
        return False
    try:
        _REASON.clean(reason)
    except ValidationError as exc:
        errors.append(f"Reason: {' '.join(exc.messages)} Nothing was changed.")
        return False
    if not stepup_confirm(request, password=request.POST.get("confirm_password")):
        errors.append(STEPUP_FAILED)
        return False
    return True


# ---- promote --------------------------------------------------------------------------------

# The hidden fields naming the version of each side the confirmation showed; the page's
# choices (above all keep or copy credentials) were made for those versions.
REVIEWED_FIELDS = {Environment.SANDBOX: "reviewed-{pk}",
                   Environment.PRODUCTION: "reviewed-production-{pk}"}


def _reviewed(request: HttpRequest, integration: Integration, environment: Environment) -> str:
    return request.POST.get(REVIEWED_FIELDS[environment].format(pk=integration.pk), "").strip()


def _promotion_confirmation(modeladmin: admin.ModelAdmin, request: HttpRequest,
                            integrations: list[Integration], errors: list[str]
                            ) -> TemplateResponse:
    items = []
    for integration in integrations:
        preview = promotion_preview(integration=integration, actor=request.user)
        post = request.POST
        items.append({
            "preview": preview,
            "choice": post.get(f"credentials-{integration.pk}") or preview.default_credentials,
            # Shown again after an error: keep the versions first reviewed, so an edit of
            # either side in between is still caught at apply.
            "reviewed": (_reviewed(request, integration, Environment.SANDBOX)
                         or preview.sandbox_version_uuid),
            "reviewed_production": (_reviewed(request, integration, Environment.PRODUCTION)
                                    or preview.production_version_uuid),
        })
    context = _context(modeladmin, request, title="Promote to Production", items=items,
                       errors=errors, reason=request.POST.get("reason", ""),
                       # Nothing to submit when every integration is refused: a button would
                       # take a reason and a password only to answer "Promoted (0)".
                       any_allowed=any(item["preview"].allowed for item in items))
    return TemplateResponse(request, TEMPLATES + "promote_confirmation.html", context)


# The page's credentials radio buttons. An integration the page shows as refused has none, so
# a post without a choice for it is refused, not promoted with a choice nobody made.
CREDENTIALS_CHOICES = {"keep": False, "copy": True}


def _promote_each(request: HttpRequest, integrations: list[Integration]
                  ) -> tuple[list[Any], list[tuple[Integration, list[str]]]]:
    promoted, refused = [], []
    meta = RequestMeta.from_request(request)
    for integration in integrations:
        # "none" stands for "that side had no version when reviewed"; a missing field means the
        # integration was not on the page at all (or the page predates the field).
        sandbox = _reviewed(request, integration, Environment.SANDBOX)
        production = _reviewed(request, integration, Environment.PRODUCTION)
        if not (sandbox and production):
            refused.append((integration, ["It was not on the confirmation page you reviewed."]))
            continue
        try:
            promoted.append(promotion_apply(
                integration=integration, actor=request.user, reason=request.POST["reason"],
                copy_credentials=CREDENTIALS_CHOICES.get(
                    request.POST.get(f"credentials-{integration.pk}", "")),
                reviewed_sandbox_version=sandbox, reviewed_production_version=production,
                meta=meta,
            ))
        except PromotionRefused as exc:
            refused.append((integration, exc.reasons))
    return promoted, refused


@admin.action(description="Promote to Production")
def promote_to_production(modeladmin: admin.ModelAdmin, request: HttpRequest,
                          queryset: QuerySet[Integration]) -> TemplateResponse:
    require_offered(request)
    integrations = list(queryset.order_by("name"))
    errors: list[str] = []
    if not request.POST.get("post") or not _confirmed(request, errors):
        return _promotion_confirmation(modeladmin, request, integrations, errors)
    promoted, refused = _promote_each(request, integrations)
    context = _context(modeladmin, request, title="Promotion result", promoted=promoted,
                       refused=refused)
    return TemplateResponse(request, TEMPLATES + "promote_result.html", context)


# ---- roll back ------------------------------------------------------------------------------

def _posted_number(request: HttpRequest, name: str) -> int | None:
    try:
        return int(request.POST.get(name, ""))
    except ValueError:
        return None


@admin.action(description="Roll back Production…")
def roll_back_production(modeladmin: admin.ModelAdmin, request: HttpRequest,
                         queryset: QuerySet[Integration]) -> TemplateResponse | None:
    require_offered(request)
    if queryset.count() != 1:
        modeladmin.message_user(request, "Choose exactly one integration to roll back.",
                                messages.WARNING)
        return None
    integration = queryset.get()
    errors: list[str] = []
    # The current version the page showed: the version to go back to was chosen against it.
    # Shown again after the page's own errors (reason, password) the form keeps it, so a change
    # landing meanwhile is still caught; after the service's refusal, or from a page without it,
    # the page shows Production as it is now and the next try is reviewed against that.
    reviewed = _posted_number(request, "current_version")
    if request.POST.get("post") and _confirmed(request, errors):
        number = _posted_number(request, "to_version")
        if number is None:
            errors.append("Choose the version to roll back to; nothing was changed.")
        elif reviewed is None:
            errors.append("This page was out of date: look at the versions again and choose; "
                          "nothing was changed.")
        else:
            try:
                rollback = rollback_apply(
                    integration=integration, actor=request.user, to_version_number=number,
                    reason=request.POST["reason"], reviewed_current=reviewed,
                    meta=RequestMeta.from_request(request))
            except PromotionRefused as exc:
                errors.extend(exc.reasons)
                reviewed = None
            else:
                # The next step is a Production check, on the integration's dashboard page:
                # link it (format_html escapes the name; the message keeps it safe).
                modeladmin.message_user(request, format_html(
                    'Rolled {} Production back to v{} as version {}; it is unverified until a '
                    'Production check passes: <a href="{}">check Production on its page</a>.',
                    integration.name, number, rollback.new_version.number,
                    reverse("dashboard:integration", args=[integration.uuid])),
                    messages.SUCCESS)
                return None
    versions = production_versions(integration=integration)
    if reviewed is None:
        reviewed = next((row.version.number for row in versions if row.current), None)
    context = _context(modeladmin, request, title="Roll back Production",
                       integration=integration, versions=versions, reviewed_current=reviewed,
                       errors=errors, reason=request.POST.get("reason", ""),
                       chosen=request.POST.get("to_version", ""))
    return TemplateResponse(request, TEMPLATES + "rollback_confirmation.html", context)
