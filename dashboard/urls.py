from django.contrib import admin
from django.urls import include, path

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
    path("admin/", admin.site.urls),
    path("", include("dashboard.page_urls")),
]
