"""The dashboard's own pages (namespace "dashboard")."""

from django.urls import path

from dashboard.views import overview

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
]
