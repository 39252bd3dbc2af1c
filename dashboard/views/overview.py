"""The overview: every integration the user may see, one compact row each, with a cell per
environment it may view (state, version, last check, token countdown, failing since, Check now).
The full card with every link is on the integration page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard.overview_page import overview_page


def overview(request: HttpRequest) -> HttpResponse:
    # Rendered once per change of what it shows, then from the cache (dashboard/overview_page.py).
    return HttpResponse(overview_page(request=request, page_number=request.GET.get("page")))
