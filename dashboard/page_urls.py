"""The dashboard's own pages (namespace "dashboard")."""

from django.urls import path

from dashboard.views import access as access_views
from dashboard.views import audit as audit_views
from dashboard.views import checks, integrations, overview, package_form
from dashboard.views import promotion as promotion_views
from dashboard.views import reveal as reveal_views
from dashboard.views import stepup as stepup_views

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    # The lead's package form (issue 6): Save and "Save and check" are separate actions.
    path("integrations/new/", package_form.integration_new, name="integration_new"),
    path("integrations/new/check/", package_form.integration_new_check,
         name="integration_new_check"),
    path("integrations/<uuid:uuid>/packages/<str:environment>/edit/", package_form.package_edit,
         name="package_edit"),
    path("integrations/<uuid:uuid>/packages/<str:environment>/edit/check/",
         package_form.package_edit_check, name="package_edit_check"),
    # Access, audit, reveal and step-up (issue 5).
    path("accounts/confirm/", stepup_views.confirm_password, name="confirm_password"),
    path("access/", access_views.access_page, name="access"),
    path("access/report.csv", access_views.access_csv, name="access_csv"),
    path("access/grants/new/", access_views.grant_new, name="grant_new"),
    path("access/grants/<uuid:uuid>/revoke/", access_views.grant_end, name="grant_end"),
    path("audit/", audit_views.audit_log, name="audit"),
    path("audit/export.csv", audit_views.audit_export_csv, name="audit_csv"),
    path("audit/export.jsonl", audit_views.audit_export_jsonl, name="audit_jsonl"),
    path("packages/<uuid:uuid>/reveal/", reveal_views.reveal_page, name="reveal"),
    path("packages/<uuid:uuid>/reveal/secret/", reveal_views.reveal_secret, name="reveal_secret"),
    path("packages/<uuid:uuid>/reveal/token/", reveal_views.reveal_token, name="reveal_token"),
    path("packages/<uuid:uuid>/reveal/postman/", reveal_views.postman_export,
         name="postman_export"),
    path("integrations/<uuid:uuid>/", integrations.integration_detail, name="integration"),
    # Production history and rollback (issue 4).
    path("integrations/<uuid:uuid>/sandbox/history/", integrations.sandbox_history,
         name="sandbox_history"),
    path("integrations/<uuid:uuid>/production/history/", promotion_views.production_history,
         name="production_history"),
    path("integrations/<uuid:uuid>/production/rollback/", promotion_views.production_rollback,
         name="production_rollback"),
    path("packages/<uuid:uuid>/checks/", checks.history, name="check_history"),
    path("packages/<uuid:uuid>/check/", checks.check_now, name="check_run"),
    path("packages/<uuid:uuid>/refresh/", checks.token_refresh, name="check_refresh"),
]
