"""Session lifetime and cache headers for a site that shows credentials."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard.navigation import form_page, local_path

AUTH_STARTED_KEY = "aislekeys_auth_started"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _is_form_post(request: HttpRequest) -> bool:
    """A form the user sent (not htmx: its card actions hold nothing typed) that will not be
    saved, because the session behind it has ended."""
    return request.method not in ("GET", "HEAD", "OPTIONS") and not _is_htmx(request)


def _same_host_path(request: HttpRequest, address: str) -> str:
    """The path and query of `address` when it is on this host, else "". For headers anyone
    can set (HX-Current-URL, Referer): never a way to send the user to another site."""
    if not url_has_allowed_host_and_scheme(address, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return ""
    parts = urlsplit(address)
    return local_path(request, parts.path + (f"?{parts.query}" if parts.query else "")) or ""


def _page_the_user_was_on(request: HttpRequest) -> str:
    """Where to return after signing in again: for htmx the page that sent the request
    (HX-Current-URL); for a form sent by POST the page the form was on (Referer: the POST's own
    address may answer only POST, and the body is never put in a URL); else this one."""
    if _is_htmx(request):
        return _same_host_path(request, request.headers.get("HX-Current-URL", ""))
    if request.method == "GET":
        # A bookmarked button's address answers only POST: come back to its form's page.
        return form_page(request.get_full_path())
    came_from = _same_host_path(request, request.headers.get("Referer", ""))
    return form_page(came_from) if came_from else ""


def _session_expired(request: HttpRequest) -> bool:
    """The browser sent a session cookie the store no longer knows: it ran out (idle)."""
    sent = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    return bool(sent) and sent != request.session.session_key


def login_redirect(request: HttpRequest, *, expired: bool) -> HttpResponse:
    """To the sign-in page, coming back to the page the user was on.

    An htmx request gets HX-Redirect instead of a 302: the XMLHttpRequest would follow a 302
    itself and htmx would swap the whole sign-in page into the card, where its form (without
    an action) posts the typed credentials to the card's URL and loses them.
    """
    query = QueryDict(mutable=True)
    target = _page_the_user_was_on(request)
    if target:
        query[REDIRECT_FIELD_NAME] = target
    if expired:
        query["expired"] = "1"
        # The sign-in page says the form was not saved: after signing in the user is back on
        # its page, empty, and would otherwise think it had been sent.
        if _is_form_post(request):
            query["unsaved"] = "1"
    # safe="/" as Django's redirect_to_login: ?next=/integrations/… stays readable.
    url = resolve_url(settings.LOGIN_URL) + (f"?{query.urlencode(safe='/')}" if query else "")
    if _is_htmx(request):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


class SignInRequiredMiddleware(LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, telling an expired session and htmx apart.

    A session that ran out while idle says so on the sign-in page, as the absolute limit does.
    An htmx request can only come from a page that was signed in, so its session ended too.
    """

    def handle_no_permission(self, request: HttpRequest, view_func: Any) -> HttpResponse:
        return login_redirect(request, expired=_is_htmx(request) or _session_expired(request))


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
                return login_redirect(request, expired=True)
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


class MethodNotAllowedPageMiddleware:
    """A page, not the browser's blank "HTTP ERROR 405", for a GET of an address that only takes
    a form's POST (a bookmarked Check now, say): it links to the page the form is on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (response.status_code != 405 or response.content
                or request.method not in ("GET", "HEAD")):
            return response
        page = render(request, "405.html", {"form_page": form_page(request.path)}, status=405)
        page["Allow"] = response.get("Allow", "")
        return page


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
