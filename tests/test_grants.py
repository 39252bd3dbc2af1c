"""Time-bound grants: a refused grant to oneself in the audit log."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from onboarding.models import AccessGrant, AuditEvent, Role
from onboarding.services.audit import AuditAction, audit_verify
from onboarding.services.grants import GrantError, grant_create
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user
from tests.test_access import PASSWORD, fresh, later


def grant_form(**overrides: str) -> dict[str, str]:
    until = timezone.localtime(later(days=2)).strftime("%Y-%m-%dT%H:%M")
    return {"user": "outsider", "role": "reveal", "integration": "", "valid_until": until,
            "reason": "on call", "confirm_password": PASSWORD, **overrides}


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
