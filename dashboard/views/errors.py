"""The refused-form page. Django's own renders a custom 403_csrf.html without saying why the
form was refused, and the why decides what the user has to do (allow cookies, allow the Referer
header, or just reload a page that was open across a sign-in)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE, REASON_NO_REFERER
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", {
        "no_cookie": reason == REASON_NO_CSRF_COOKIE,
        "no_referer": reason == REASON_NO_REFERER,
    }, status=403)
