"""Running checks from the dashboard, and a package's check history.

Each action is its own POST view. An htmx request gets the refreshed card to swap in place; a
plain form post (no JavaScript) gets a message and a redirect back to the page it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import package_for
from dashboard.cards import card_for
from dashboard.navigation import local_path
from dashboard.views.integrations import recent_checks
from onboarding.models import ConnectivityCheck, OnboardingPackage, Role
from onboarding.services.audit import RequestMeta
from onboarding.services.checks import CheckError, check_history, check_refresh, check_run
from onboarding.services.status import check_outcome_label

CHECKS_PER_PAGE = 25


@require_POST
def check_now(request: HttpRequest, uuid: UUID) -> HttpResponse:
    package = package_for(request, uuid=uuid, action=Role.CHECK)
    return _run(request, package, check_run)


@require_POST
def token_refresh(request: HttpRequest, uuid: UUID) -> HttpResponse:
    package = package_for(request, uuid=uuid, action=Role.CHECK)
    return _run(request, package, check_refresh)


@require_GET
def history(request: HttpRequest, uuid: UUID) -> HttpResponse:
    package = package_for(request, uuid=uuid, action=Role.VIEW)
    page = Paginator(check_history(package=package), CHECKS_PER_PAGE).get_page(
        request.GET.get("page"))
    return render(request, "dashboard/check_history.html", {"package": package, "page": page})


def _run(request: HttpRequest, package: OnboardingPackage,
         service: Callable[..., ConnectivityCheck]) -> HttpResponse:
    error, check = "", None
    try:
        check = service(package=package, actor=request.user,
                        meta=RequestMeta.from_request(request))
    except CheckError as exc:
        error = str(exc)
    if request.headers.get("HX-Request") == "true":
        card = card_for(user=request.user, integration=package.integration,
                        environment=package.environment, error=error)
        # The overview's compact cell asks for a cell back (Jinja2, as on the overview), the
        # integration page for its card, with the recent checks under it (out of band).
        context = {"card": card, "return_to": _return_to(request)}
        if request.POST.get("view") == "cell":
            return render(request, "dashboard/cell.html", context, using="jinja2")
        context["recent"] = recent_checks(package)
        return render(request, "dashboard/_card_swap.html", context)
    if error:
        messages.error(request, error)
    elif check is not None and check.ok:
        messages.success(request, f"{package}: {check.message}")
    elif check is not None:
        messages.warning(request, f"{package}: {check_outcome_label(check=check)}. "
                                  f"{check.message}")
    return redirect(_return_to(request))


def _return_to(request: HttpRequest) -> str:
    return local_path(request, request.POST.get("next", "")) or "/"
