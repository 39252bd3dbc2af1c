"""The product's URLs plus the floor: a trivial login-required view that goes through the same
middleware (sessions, authentication, CSP, no-store) as every page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/floor/", floor, name="bench_floor"),
    path("", include("dashboard.urls")),
]
