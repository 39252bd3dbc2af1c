from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from dashboard.forms import AdminSignInForm
from dashboard.views import account

admin.site.site_header = "Aisle Keys administration"
admin.site.site_title = "Aisle Keys"
admin.site.index_title = "Integrations, packages and access"
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("accounts/login/", account.login_view, name="login"),
    path("accounts/logout/", account.logout_view, name="logout"),
    path("accounts/password/", account.password_change, name="password_change"),
    # The admin's "Change password" link leads to the site's own page, which audits who
    # changed it and from where in the password's own transaction; Django's admin view wrote
    # "system" with no address. Matched before admin.site.urls, so the admin's link (its
    # reverse("admin:password_change")) still works.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/", admin.site.urls),
    path("", include("dashboard.page_urls")),
]
