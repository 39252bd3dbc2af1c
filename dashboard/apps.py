from django.apps import AppConfig
from django.conf import settings


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        if not settings.DEBUG:
            # The overview's cache keys carry the revision of the code that rendered a page.
            # Worked out as the process starts, it is the code this process runs: worked out at
            # the first visit, a worker still running old code after the new code was copied in
            # would file its pages under the new revision, for the restarted workers to serve.
            from dashboard.overview_page import deployed_revision

            deployed_revision()
