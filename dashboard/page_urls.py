"""The dashboard's own pages (namespace "dashboard")."""

from django.urls import path

from dashboard.views import checks, integrations, overview

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("integrations/<uuid:uuid>/", integrations.integration_detail, name="integration"),
    path("packages/<uuid:uuid>/checks/", checks.history, name="check_history"),
    path("packages/<uuid:uuid>/check/", checks.check_now, name="check_run"),
    path("packages/<uuid:uuid>/refresh/", checks.token_refresh, name="check_refresh"),
]
