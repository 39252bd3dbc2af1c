"""Where a form may send the user back to: the `next` fields the pages post."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme


def local_path(request: HttpRequest, candidate: str) -> str | None:
    """`candidate` when it is an absolute path on this site ("/audit/?page=2"), else None.

    Only a path: a bare word such as "overview" passes Django's host check, but redirect()
    reads it as a URL pattern name (a 500 when there is none, a jump to whatever page has that
    name when there is), and a relative address would depend on the page that posted it. The
    pages only ever post paths, so anything else is ignored, as a foreign host is."""
    if not candidate.startswith("/"):
        return None
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return None
    return candidate


# Addresses that answer only POST but show their form again when it is refused (errors, a wrong
# password): the page that form lives on, which answers GET, and whether it takes the same URL
# arguments (a revoke names its grant; the access page it is on names none).
_FORM_PAGE_OF = {
    "dashboard:integration_new_check": ("dashboard:integration_new", False),
    "dashboard:package_edit_check": ("dashboard:package_edit", True),
    "dashboard:reveal_secret": ("dashboard:reveal", True),
    "dashboard:reveal_token": ("dashboard:reveal", True),
    "dashboard:postman_export": ("dashboard:reveal", True),
    "dashboard:production_rollback": ("dashboard:production_history", True),
    "dashboard:grant_end": ("dashboard:access", False),
    # Check now and Refresh token are buttons; a bookmark of their address (or a sign-in that
    # comes back to it) lands on the package's checks, where the buttons are.
    "dashboard:check_run": ("dashboard:check_history", True),
    "dashboard:check_refresh": ("dashboard:check_history", True),
}


def form_page(path: str) -> str:
    """The page to go back to for a form last shown at `path` (a local path): `path` itself,
    unless only POST is answered there, then its form's page. Going back to a POST-only
    address after signing in again gave a blank "405 Method Not Allowed"."""
    try:
        match = resolve(path.split("?", 1)[0])
    except Resolver404:
        return path
    if match.view_name not in _FORM_PAGE_OF:
        return path
    page, same_arguments = _FORM_PAGE_OF[match.view_name]
    try:
        return reverse(page, kwargs=match.kwargs if same_arguments else None)
    except NoReverseMatch:  # a header anyone can set must never cost a 500
        return ""
