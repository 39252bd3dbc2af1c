"""A signed-in user's own account: changing the password at any time, and signing out."""

from __future__ import annotations

import pytest

from onboarding.models import PasswordChangeRequired

LOGIN = "/accounts/login/"
PASSWORD_CHANGE = "/accounts/password/"
GENERATED = b"Your password was generated for you"


@pytest.mark.parametrize("url", ["/", "/audit/", PASSWORD_CHANGE])
def test_every_page_of_a_signed_in_user_links_to_change_password(client, auditor, url):
    client.force_login(auditor)
    page = client.get(url).content.decode()
    assert f'<a href="{PASSWORD_CHANGE}">Change password</a>' in page


def test_sign_in_has_no_change_password_link(client, db):
    assert b"Change password" not in client.get(LOGIN).content


def test_a_voluntary_password_change_does_not_claim_the_password_was_generated(client, lead):
    client.force_login(lead)
    page = client.get(PASSWORD_CHANGE)
    assert page.status_code == 200
    assert b"<h1>Change your password</h1>" in page.content
    assert GENERATED not in page.content


def test_an_account_marked_to_change_its_password_is_told_it_was_generated(client, lead):
    PasswordChangeRequired.objects.create(user=lead)
    client.force_login(lead)
    page = client.get(PASSWORD_CHANGE)
    assert b"<h1>Choose your password</h1>" in page.content
    assert GENERATED in page.content


def test_signing_out_says_so_on_the_sign_in_page(client, lead):
    client.force_login(lead)
    response = client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0] == LOGIN
    assert b"You are signed out." in response.content
    assert "_auth_user_id" not in client.session
    # Said once: the next visit to the sign-in page is a plain one.
    assert b"You are signed out." not in client.get(LOGIN).content


def test_sign_out_needs_post(client, lead):
    client.force_login(lead)
    assert client.get("/accounts/logout/").status_code == 405
    assert "_auth_user_id" in client.session


def test_the_admins_change_password_link_changes_it_and_the_event_names_who_and_whence(
        client, superuser):
    from django.urls import reverse

    from onboarding.models import AuditEvent
    from onboarding.services.audit import AuditAction

    client.force_login(superuser)
    link = reverse("admin:password_change")
    assert f'href="{link}"' in client.get("/admin/").content.decode()
    page = client.get(link, follow=True)
    assert page.status_code == 200 and b'name="new_password1"' in page.content
    url = page.redirect_chain[-1][0] if page.redirect_chain else link
    new = "Admin-Side-Pass-7731"
    response = client.post(url, {"old_password": "unused-in-tests-1234",
                                 "new_password1": new, "new_password2": new},
                           REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302
    superuser.refresh_from_db()
    assert superuser.check_password(new)
    # Django's own admin view wrote it as "system", with no user id and no address.
    event = AuditEvent.objects.filter(action=AuditAction.PASSWORD_CHANGE).latest("seq")
    assert (event.actor_name, event.actor_id, event.ip) == (superuser.username, superuser.pk,
                                                            "203.0.113.9")


def test_having_just_changed_the_password_the_next_sensitive_action_does_not_ask_again(
        client, superuser):
    # A first admin chooses a password at first sign-in; the next click (Admin → Add user)
    # asked for it again. The old password was typed seconds before.
    client.force_login(superuser)
    assert client.get("/admin/auth/user/add/").status_code == 302  # to the confirmation
    response = client.post(PASSWORD_CHANGE, {
        "old_password": "unused-in-tests-1234", "new_password1": "a-new-Passw0rd-here",
        "new_password2": "a-new-Passw0rd-here"})
    assert response.status_code == 302
    assert client.get("/admin/auth/user/add/").status_code == 200


def _change(client, old: str, new: str = "a-new-Passw0rd-here"):
    return client.post(PASSWORD_CHANGE, {"old_password": old, "new_password1": new,
                                         "new_password2": new})


def test_a_wrong_current_password_counts_towards_the_lockout_and_is_audited(client, lead):
    # Django's form checks the current password with check_password(), unseen by django-axes
    # and the audit log: a signed-in session could guess it without limit, and a right guess
    # also made the step-up fresh.
    from django.conf import settings

    from dashboard.stepup import SESSION_KEY
    from onboarding.models import AuditEvent
    from onboarding.services.audit import AuditAction

    client.force_login(lead)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _change(client, "not-the-password")
        assert response.status_code == 200
        assert b"Your old password was entered incorrectly" in response.content
    assert _change(client, "not-the-password").status_code == 429  # the limit: paused
    assert AuditEvent.objects.filter(action=AuditAction.STEP_UP_FAILED, actor_id=lead.pk).count() \
        == settings.AXES_FAILURE_LIMIT
    # Paused: even the right password changes nothing and proves nothing.
    assert _change(client, "unused-in-tests-1234").status_code == 429
    lead.refresh_from_db()
    assert lead.check_password("unused-in-tests-1234")
    assert SESSION_KEY not in client.session


def test_the_current_password_is_refused_as_the_new_one(client, lead):
    client.force_login(lead)
    response = _change(client, "unused-in-tests-1234", new="unused-in-tests-1234")
    assert response.status_code == 200
    assert b"Choose a new password: this is your current one." in response.content


def test_a_signed_in_user_paused_for_wrong_passwords_is_not_told_sign_in_is_paused(client,
                                                                                   lead):
    from django.conf import settings

    client.force_login(lead)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _change(client, "not-the-password")
    assert response.status_code == 429
    page = response.content.decode()
    assert "<h1>Password confirmation paused</h1>" in page and "Sign-in paused" not in page
    assert "paused for 15 minutes" in page and "Nothing was changed." in page
