"""The overview: every integration the user may see, one compact row each, with a cell per
environment it may view (state, version, last check, token countdown, failing since, Check now).
The full card with every link is on the integration page.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from dashboard.overview_rows import overview_rows
from onboarding.services.access import has_any_access, visible_integrations

# 25 rows of at most two cells: a page costs the same at 10 or 10,000 integrations, and little.
INTEGRATIONS_PER_PAGE = 25


def overview(request: HttpRequest) -> HttpResponse:
    visible = visible_integrations(user=request.user).order_by("name").only("pk", "uuid", "name")
    page = Paginator(visible, INTEGRATIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = overview_rows(request=request, integrations=page.object_list)
    return render(request, "dashboard/overview.html", {
        # Jinja2 escaped what it rendered, so the rows are safe to place as they are.
        "rows": mark_safe(rows.html), "any_cell": rows.any_cell, "page": page,  # noqa: S308
        "can_add": request.user.has_perm("onboarding.add_integration"),
        # Asked only for the empty page: there, no access and no integrations read differently.
        "no_access": not rows.any_cell and not has_any_access(user=request.user),
    })
