"""The overview: every integration the user may see."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from onboarding.services.access import visible_integrations


def overview(request: HttpRequest) -> HttpResponse:
    integrations = visible_integrations(user=request.user).order_by("name")
    return render(request, "dashboard/overview.html", {"integrations": integrations})
