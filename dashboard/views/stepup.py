"""The password confirmation page sensitive actions send a user to (/accounts/confirm/)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from dashboard.navigation import local_path
from dashboard.stepup import stepup_confirm


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    return local_path(request, candidate) or reverse("dashboard:overview")


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def confirm_password(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    error = ""
    if request.method == "POST":
        if stepup_confirm(request, password=request.POST.get("password") or None):
            return redirect(next_url)
        error = "That password is not right."
    return render(request, "registration/confirm_password.html",
                  {"next": next_url, "error": error}, status=403 if error else 200)
