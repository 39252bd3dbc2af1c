"""Sign-in, sign-out and password change. The forms carry a password, so none is ever logged."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from dashboard.forms import AccountPasswordChangeForm, SignInForm
from dashboard.stepup import stepup_mark_fresh
from onboarding.services.accounts import password_change_required, password_changed
from onboarding.services.audit import RequestMeta, audit_acting


@login_not_required
@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    return auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                        authentication_form=SignInForm)(request)


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
def password_change(request: HttpRequest) -> HttpResponse:
    form = AccountPasswordChangeForm(request.user, request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        # One transaction with its audit event (written by the user's post_save): if the
        # event cannot be written, the password stays as it was.
        with (transaction.atomic(),
              audit_acting(actor=request.user, meta=RequestMeta.from_request(request))):
            user = form.save()
            password_changed(user=user)
        update_session_auth_hash(request, user)
        # The current password was typed seconds ago: a first admin, made to choose a password
        # at first sign-in, is not asked for it again on the very next click.
        stepup_mark_fresh(request)
        messages.success(request, "Your password was changed.")
        return redirect("dashboard:overview")
    # Only an account marked to change its generated password is told it was generated.
    return render(request, "registration/password_change.html", {
        "form": form, "required": password_change_required(user=request.user),
    })


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Django's sign-out, then a word on the sign-in page it leads to (LOGOUT_REDIRECT_URL).

    The message is added after the session is flushed, so it survives into the next page."""
    response = auth_views.LogoutView.as_view()(request)
    messages.info(request, "You are signed out.")
    return response
