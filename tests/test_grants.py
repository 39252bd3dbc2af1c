"""Time-bound grants given twice (a double click, a deliberate second grant), a refused grant to
oneself in the audit log, and what a refused revocation says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.utils import timezone

from onboarding.models import AccessGrant, AuditEvent, Role
from onboarding.services.access import can
from onboarding.services.audit import AuditAction, audit_verify
from onboarding.services.grants import (
    GrantError,
    grant_create,
    grant_give,
    grant_revoke,
)
from onboarding.services.reasons import REPEAT_WINDOW
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user
from tests.test_access import PASSWORD, PROD, fresh, later


def grant_form(**overrides: str) -> dict[str, str]:
    until = timezone.localtime(later(days=2)).strftime("%Y-%m-%dT%H:%M")
    return {"user": "outsider", "role": "reveal", "integration": "", "valid_until": until,
            "reason": "on call", "confirm_password": PASSWORD, **overrides}


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def counts() -> tuple[int, int]:
    return AccessGrant.objects.count(), AuditEvent.objects.filter(action=AuditAction.GRANT).count()


# ---- the same grant posted twice -----------------------------------------------------------

def test_a_double_clicked_grant_gives_one_grant_and_says_so(client, superuser, outsider):
    client.force_login(superuser)
    first = client.post("/access/grants/new/", grant_form())
    second = client.post("/access/grants/new/", grant_form())
    assert (first.status_code, second.status_code) == (302, 302)
    grant = AccessGrant.objects.get()
    assert counts() == (1, 1)
    assert flashed(second) == [
        f"Granted reveal to outsider as grant #{grant.pk}.",
        f"You already granted reveal to outsider as grant #{grant.pk}; nothing was granted "
        "twice."]
    # Revoking the grant the page named ends the access: there is no twin left live.
    client.post(f"/access/grants/{grant.uuid}/revoke/")
    assert not can(user=fresh(outsider), action=Role.REVEAL, environment=PROD)


def test_the_service_returns_the_grant_just_made_when_it_is_posted_again(superuser, outsider,
                                                                         integration):
    values = {"user": outsider, "role": Role.CHECK, "valid_until": later(days=1),
              "reason": " on call ", "granted_by": superuser, "integration": integration}
    first, second = grant_give(**values), grant_give(**values)
    assert (first.new, second.new) == (True, False)
    assert second.grant == first.grant and counts() == (1, 1)
    assert grant_create(**values) == first.grant  # the command prints the same number
    assert audit_verify().ok


@pytest.mark.parametrize("change", ["later", "other_manager", "other_end", "other_reason"])
def test_granting_again_what_the_user_holds_is_refused_naming_the_live_grant(
        superuser, outsider, change):
    until = later(days=1)
    values = {"user": outsider, "role": Role.REVEAL, "valid_until": until, "reason": "on call",
              "granted_by": superuser}
    live = grant_create(**values)
    if change == "later":  # the same grant, posted again well after the double-click window
        AccessGrant.objects.filter(pk=live.pk).update(
            granted_at=timezone.now() - REPEAT_WINDOW - timedelta(seconds=1))
    elif change == "other_manager":
        values["granted_by"] = make_user("other-manager", is_superuser=True)
    elif change == "other_end":  # extending the grant is a new decision: revoke, grant again
        values["valid_until"] = later(days=5)
    else:
        values["reason"] = "second shift"
    with pytest.raises(GrantError) as refused:
        grant_create(**values)
    local = timezone.localtime(until)
    assert str(refused.value) == (
        f"outsider already holds reveal on all integrations until {local:%Y-%m-%d %H:%M} "
        f"({timezone.get_current_timezone_name()}) as grant #{live.pk}: nothing was granted. "
        f"To change its end or reason, revoke grant #{live.pk} and grant again.")
    assert counts() == (1, 1)
    denied = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert denied.details == {"attempted": "grant",
                              "refused": f"already holds it as grant #{live.pk}"}
    assert denied.target == "outsider"


def test_after_revoking_the_same_grant_may_be_given_again(superuser, outsider):
    values = {"user": outsider, "role": Role.REVEAL, "valid_until": later(days=1),
              "reason": "on call", "granted_by": superuser}
    first = grant_create(**values)
    grant_revoke(grant=first, revoked_by=superuser)
    second = grant_give(**values)
    assert second.new and second.grant != first and counts() == (2, 2)


def test_other_roles_and_scopes_are_separate_grants(superuser, outsider, integration):
    values = {"user": outsider, "valid_until": later(days=1), "reason": "on call",
              "granted_by": superuser}
    grant_create(role=Role.REVEAL, **values)
    grant_create(role=Role.CHECK, **values)
    grant_create(role=Role.REVEAL, integration=integration, **values)
    assert counts() == (3, 3)


def test_a_grant_refused_on_the_page_as_already_held_says_why(client, superuser, outsider):
    grant = grant_create(user=outsider, role=Role.REVEAL, valid_until=later(days=1),
                         reason="on call", granted_by=make_user("other", is_superuser=True))
    client.force_login(superuser)
    response = client.post("/access/grants/new/", grant_form())
    assert response.status_code == 400
    assert f"as grant #{grant.pk}: nothing was granted." in response.content.decode()
    assert counts() == (1, 1)


# ---- granting to oneself -------------------------------------------------------------------

@pytest.fixture
def manager(db):
    user = make_user("manager")
    user.user_permissions.add(Permission.objects.get(codename="add_accessgrant"),
                              Permission.objects.get(codename="view_access_report"))
    return fresh(user)


def test_a_refused_grant_to_oneself_is_audited_as_denied(manager):
    with pytest.raises(GrantError, match="yourself"):
        grant_create(user=manager, role=Role.PROMOTE, valid_until=later(hours=1),
                     reason="me", granted_by=manager)
    denied = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert (denied.actor_id, denied.environment, denied.target) == (manager.pk, "production",
                                                                   "manager")
    assert denied.details == {"attempted": "grant", "refused": "grant to themselves"}
    assert not AccessGrant.objects.exists() and audit_verify().ok


def test_a_grant_to_oneself_is_audited_even_when_the_rest_of_the_form_is_wrong(manager):
    with pytest.raises(GrantError, match="yourself"):
        grant_create(user=manager, role=Role.PROMOTE, valid_until=later(hours=-1),
                     reason=" ", granted_by=manager)
    assert AuditEvent.objects.filter(action=AuditAction.DENIED).count() == 1


def test_a_grant_to_oneself_on_the_page_is_refused_and_audited(client, manager):
    client.force_login(manager)
    response = client.post("/access/grants/new/", grant_form(user="manager", role="promote"))
    assert response.status_code == 400 and "yourself" in response.content.decode()
    denied = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert denied.details["refused"] == "grant to themselves"
    dumped = repr(denied.details) + denied.target
    assert PASSWORD not in dumped and KNOWN_SECRET not in dumped and KNOWN_PASSWORD not in dumped


# ---- a revocation refused for the password -------------------------------------------------

def test_a_wrong_password_on_revoke_says_so_and_names_the_grant(client, superuser, outsider):
    grant = grant_create(user=outsider, role=Role.CHECK, valid_until=later(days=1),
                         reason="on call", granted_by=superuser)
    client.force_login(superuser)  # no step-up yet: the password is asked for
    response = client.post(f"/access/grants/{grant.uuid}/revoke/",
                           {"confirm_password": "not-my-password"})
    assert response.status_code == 302
    assert flashed(response) == [
        f"That password is not right, so grant #{grant.pk} (outsider) was not revoked. Enter "
        "it again (wrong passwords count towards the pause after repeated failed sign-ins)."]
    assert fresh(grant).is_active()
    assert not AuditEvent.objects.filter(action=AuditAction.REVOKE).exists()


def test_revoke_without_the_password_asks_for_it_naming_the_grant(client, superuser, outsider):
    grant = grant_create(user=outsider, role=Role.CHECK, valid_until=later(days=1),
                         reason="on call", granted_by=superuser)
    client.force_login(superuser)
    response = client.post(f"/access/grants/{grant.uuid}/revoke/")
    assert flashed(response) == [f"Confirm your password to revoke grant #{grant.pk} "
                                 "(outsider); nothing was revoked."]
    assert fresh(grant).is_active()


def test_a_wrong_password_on_the_grant_form_says_so(client, superuser, outsider):
    client.force_login(superuser)
    response = client.post("/access/grants/new/", grant_form(confirm_password="wrong"))
    assert response.status_code == 400
    assert "That password is not right, so nothing was granted." in response.content.decode()
    assert counts() == (0, 0)
