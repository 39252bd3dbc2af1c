"""Session lifetime and cache headers for a site that shows credentials."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

AUTH_STARTED_KEY = "aislekeys_auth_started"


class SessionLifetimeMiddleware:
    """Ends a session SESSION_MAX_AGE after login, however active it is.

    The idle timeout is Django's own (SESSION_COOKIE_AGE renewed on every request); this adds the
    absolute limit, so a stolen session cookie is not good forever.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            started = request.session.get(AUTH_STARTED_KEY)
            now = time.time()
            if started is None:
                request.session[AUTH_STARTED_KEY] = now
            elif now - float(started) > settings.SESSION_MAX_AGE.total_seconds():
                logout(request)
                return redirect(f"{reverse(settings.LOGIN_URL)}?expired=1")
        return self.get_response(request)


class NoStoreMiddleware:
    """Pages seen by a signed-in user may show package details: no cache may keep them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated and not request.path.startswith(settings.STATIC_URL):
            response["Cache-Control"] = "no-store, private"
        return response


PASSWORD_OK_KEY = "aislekeys_password_ok"  # noqa: S105 (a session key name)


class ForcePasswordChangeMiddleware:
    """An account with a generated one-time password may only change it (or sign out)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from onboarding.services.accounts import password_change_required

        if request.user.is_authenticated and not request.session.get(PASSWORD_OK_KEY):
            allowed = {reverse("password_change"), reverse("logout")}
            if password_change_required(user=request.user):
                if request.path not in allowed and not request.path.startswith(
                    settings.STATIC_URL
                ):
                    return redirect("password_change")
            else:
                request.session[PASSWORD_OK_KEY] = True
        return self.get_response(request)
