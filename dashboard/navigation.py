"""Where a form may send the user back to: the `next` fields the pages post."""

from __future__ import annotations

from django.http import HttpRequest
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
