"""Reveal a secret, copy the live token, export for Postman: reveal role, step-up, audited first,
never cached, and nothing revealed when the audit write fails."""

from __future__ import annotations

import json
import re

import pytest
from django.db import DatabaseError
from django.test import override_settings

from onboarding.models import AuditEvent, Environment, OnboardingPackage
from onboarding.services import reveal as reveal_service
from onboarding.services.audit import AuditAction, audit_verify
from onboarding.services.checks import check_run
from onboarding.services.packages import UNREADABLE
from onboarding.services.reveal import RevealError, secret_reveal
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard
from tests.manage_subprocess import key_entry

PASSWORD = "unused-in-tests-1234"
PRODUCTION_SECRET = "prod-secret-Kk3Lm9Pq"


@pytest.fixture
def production_version(sandbox_version):
    return onboard(environment=Environment.PRODUCTION, client_secret=PRODUCTION_SECRET)


def url(package, name: str = "") -> str:
    return f"/packages/{package.uuid}/reveal/{name + '/' if name else ''}"


def audit_text() -> str:
    return json.dumps([[e.target, e.details] for e in AuditEvent.objects.all()])


def test_a_lead_reveals_a_sandbox_secret_after_confirming_the_password(client, lead,
                                                                       sandbox_version):
    client.force_login(lead)
    package = sandbox_version.package
    response = client.post(url(package, "secret"),
                           {"field": "client_secret", "confirm_password": PASSWORD})
    assert response.status_code == 200
    assert KNOWN_SECRET.encode() in response.content
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.filter(action=AuditAction.REVEAL).get()
    assert event.details == {"field": "client_secret", "version": 1}
    assert event.actor_name == "lead"
    assert KNOWN_SECRET not in audit_text()
    assert audit_verify().ok


def test_reveal_without_the_password_shows_nothing_and_records_nothing(client, lead,
                                                                       sandbox_version):
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "secret"), {"field": "password"})
    assert response.status_code == 403
    assert KNOWN_PASSWORD.encode() not in response.content
    assert not AuditEvent.objects.filter(action=AuditAction.REVEAL).exists()


def test_a_wrong_password_does_not_reveal(client, lead, sandbox_version):
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "secret"),
                           {"field": "password", "confirm_password": "not-my-password"})
    assert response.status_code == 403
    assert KNOWN_PASSWORD.encode() not in response.content
    assert "That password is not right" in response.content.decode()


def test_a_mistyped_confirmation_is_audited_as_the_users_own_not_a_failed_sign_in(
        client, lead, sandbox_version):
    client.force_login(lead)
    path = url(sandbox_version.package, "secret")
    client.post(path, {"field": "password", "confirm_password": "not-my-password"})
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED).exists()
    event = AuditEvent.objects.get(action=AuditAction.STEP_UP_FAILED)
    assert (event.actor_id, event.actor_name, event.target, event.details) == (
        lead.pk, "lead", "lead", {"path": path})
    assert b"not-my-password" not in json.dumps(event.details).encode()
    assert audit_verify().ok


def test_a_failed_sign_in_is_still_a_failed_sign_in(client, lead):
    client.post("/accounts/login/", {"username": "lead", "password": "not-my-password"})
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert (event.actor_id, event.target) == (None, "lead")



def test_after_a_wrong_password_the_chosen_credential_stays_chosen(client, lead,
                                                                   sandbox_version):
    # Otherwise the form falls back to "Client ID", and retyping the password reveals (and
    # audits) a credential the lead did not ask for.
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "secret"),
                           {"field": "password", "confirm_password": "not-my-password"})
    assert response.status_code == 403
    page = response.content.decode()
    assert '<option value="password" selected>Password</option>' in page
    assert '<option value="client_id" selected>' not in page

def test_a_fresh_confirmation_is_not_asked_again(client, lead, sandbox_version):
    client.force_login(lead)
    package = sandbox_version.package
    client.post(url(package, "secret"), {"field": "password", "confirm_password": PASSWORD})
    response = client.post(url(package, "secret"), {"field": "password"})
    assert response.status_code == 200
    assert KNOWN_PASSWORD.encode() in response.content


def test_the_confirmation_expires_after_sudo_minutes(client, lead, sandbox_version, settings):
    client.force_login(lead)
    package = sandbox_version.package
    client.post(url(package, "secret"), {"field": "password", "confirm_password": PASSWORD})
    settings.SUDO_MINUTES = 0
    response = client.post(url(package, "secret"), {"field": "password"})
    assert response.status_code == 403


def test_the_reveal_page_itself_shows_no_secret(client, lead, sandbox_version):
    client.force_login(lead)
    response = client.get(url(sandbox_version.package))
    assert response.status_code == 200
    assert KNOWN_SECRET.encode() not in response.content
    assert KNOWN_PASSWORD.encode() not in response.content


def test_reveal_is_a_post_only_action(client, lead, sandbox_version):
    client.force_login(lead)
    assert client.get(url(sandbox_version.package, "secret")).status_code == 405


def test_a_lead_may_not_reveal_production_and_the_attempt_is_audited(client, lead,
                                                                     production_version):
    client.force_login(lead)
    response = client.post(url(production_version.package, "secret"),
                           {"field": "client_secret", "confirm_password": PASSWORD})
    assert response.status_code == 403
    assert PRODUCTION_SECRET.encode() not in response.content
    denied = AuditEvent.objects.filter(action=AuditAction.DENIED).get()
    assert denied.environment == Environment.PRODUCTION
    assert denied.details["attempted"] == "reveal"


def test_an_outsider_gets_404(client, outsider, sandbox_version):
    client.force_login(outsider)
    assert client.get(url(sandbox_version.package)).status_code == 404
    response = client.post(url(sandbox_version.package, "secret"),
                           {"field": "password", "confirm_password": PASSWORD})
    assert response.status_code == 404


def test_a_superuser_reveals_production(client, superuser, production_version):
    client.force_login(superuser)
    response = client.post(url(production_version.package, "secret"),
                           {"field": "client_secret", "confirm_password": PASSWORD})
    assert PRODUCTION_SECRET.encode() in response.content
    assert AuditEvent.objects.get(action=AuditAction.REVEAL).environment == "production"


def test_if_the_audit_write_fails_nothing_is_revealed(client, lead, sandbox_version,
                                                      monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("audit table locked")

    client.force_login(lead)
    client.post(url(sandbox_version.package, "secret"),
                {"field": "password", "confirm_password": PASSWORD})  # fresh step-up
    monkeypatch.setattr(reveal_service, "audit_record", broken)
    for name, data in [("secret", {"field": "password"}), ("postman", {}), ("token", {})]:
        response = client.post(url(sandbox_version.package, name), data)
        assert KNOWN_PASSWORD.encode() not in response.content
        assert KNOWN_SECRET.encode() not in response.content
    with pytest.raises(DatabaseError):
        secret_reveal(package=sandbox_version.package, field_name="password", actor=lead)


def test_the_service_refuses_a_field_that_is_not_a_credential(lead, sandbox_version):
    with pytest.raises(RevealError):
        secret_reveal(package=sandbox_version.package, field_name="notes", actor=lead)


def test_an_unreadable_credential_is_named_in_the_words_the_pages_use(lead, db):
    with override_settings(FIELD_ENCRYPTION_KEYS=key_entry("gone")):
        lost = onboard("Lost keys POS")
    package = OnboardingPackage.objects.get(pk=lost.package_id)  # not the copy that holds values
    with pytest.raises(RevealError, match=f"^{re.escape(f'The client ID {UNREADABLE}.')}$"):
        secret_reveal(package=package, field_name="client_id", actor=lead)


def test_the_live_token_of_the_last_check_is_copied_and_audited(client, lead, sandbox_version,
                                                                sandbox_simulator):
    check = check_run(package=sandbox_version.package, actor=lead)
    assert check.ok
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "token"), {"confirm_password": PASSWORD})
    assert response.status_code == 200
    assert check.access_token.encode() in response.content
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_COPY)
    assert event.details["field"] == "access_token"
    assert check.access_token not in audit_text()


def test_without_a_live_token_there_is_nothing_to_copy(client, lead, sandbox_version):
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "token"), {"confirm_password": PASSWORD})
    assert response.status_code == 409
    assert not AuditEvent.objects.filter(action=AuditAction.TOKEN_COPY).exists()


@pytest.fixture
def token_cleared_after_it_was_found(monkeypatch):
    """A newer check clears the live token just after the service found it."""
    from onboarding.models import ConnectivityCheck

    found = reveal_service.check_live_token

    def found_then_cleared(*, package):
        check = found(package=package)
        ConnectivityCheck.objects.filter(pk=check.pk).update(access_token=None,
                                                             refresh_token=None)
        return check

    monkeypatch.setattr(reveal_service, "check_live_token", found_then_cleared)


def test_a_token_cleared_meanwhile_is_not_copied(lead, sandbox_version, sandbox_simulator,
                                                 token_cleared_after_it_was_found):
    assert check_run(package=sandbox_version.package, actor=lead).ok
    with pytest.raises(RevealError, match="no live token"):
        reveal_service.token_copy(package=sandbox_version.package, actor=lead)
    assert not AuditEvent.objects.filter(action=AuditAction.TOKEN_COPY).exists()


def test_a_token_cleared_meanwhile_is_left_out_of_the_postman_export(
        lead, sandbox_version, sandbox_simulator, token_cleared_after_it_was_found):
    assert check_run(package=sandbox_version.package, actor=lead).ok
    exported = reveal_service.postman_environment(package=sandbox_version.package, actor=lead)
    assert "access_token" not in {value["key"] for value in exported["values"]}
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert "access_token" not in event.details["fields"]


def test_the_postman_environment_holds_credentials_and_the_live_token(
        client, lead, sandbox_version, sandbox_simulator):
    check = check_run(package=sandbox_version.package, actor=lead)
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "postman"),
                           {"confirm_password": PASSWORD})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    body = json.loads(response.content)
    assert body["_postman_variable_scope"] == "environment"
    assert body["_postman_exported_using"].startswith("Aisle Keys/")
    assert body["id"] and body["name"] == "Acme POS Sandbox" and body["_postman_exported_at"]
    values = {v["key"]: v for v in body["values"]}
    assert values["accounts_url"]["value"] == sandbox_simulator.url
    assert values["token_url"]["value"] == f"{sandbox_simulator.url}/v1/oauth2/token"
    assert values["client_id"] == {"key": "client_id", "value": "client-abcdef123456",
                                   "type": "default", "enabled": True}
    assert values["client_secret"]["value"] == KNOWN_SECRET
    assert values["password"]["value"] == KNOWN_PASSWORD
    assert values["access_token"]["value"] == check.access_token
    assert {values[k]["type"] for k in ("client_secret", "password", "access_token")} == {
        "secret"}
    assert values["username"]["type"] == "default"
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert "client_secret" in event.details["fields"]
    text = audit_text()
    assert KNOWN_SECRET not in text and KNOWN_PASSWORD not in text
    assert check.access_token not in text


def test_the_postman_environment_without_a_live_token_has_no_token(client, lead,
                                                                   sandbox_version):
    client.force_login(lead)
    response = client.post(url(sandbox_version.package, "postman"),
                           {"confirm_password": PASSWORD})
    keys = [v["key"] for v in json.loads(response.content)["values"]]
    assert keys == ["accounts_url", "token_url", "client_id", "client_secret", "username",
                    "password"]


def test_cards_link_to_the_reveal_page_only_for_the_reveal_role(client, lead, auditor,
                                                               production_version):
    sandbox = production_version.package.integration.packages.get(environment="sandbox")
    # The full cards with their links are on the integration page (the overview is compact).
    page = f"/integrations/{production_version.package.integration.uuid}/"
    client.force_login(lead)
    body = client.get(page).content.decode()
    assert f"/packages/{sandbox.uuid}/reveal/" in body
    assert f"/packages/{production_version.package.uuid}/reveal/" not in body
    client.force_login(auditor)
    assert "/reveal/" not in client.get(page).content.decode()


def test_the_reveal_pages_lead_back_to_their_integration(client, lead, sandbox_version):
    # Like every other page of a package: the breadcrumb names the integration it belongs to.
    client.force_login(lead)
    package = sandbox_version.package
    back = f'<a href="/integrations/{package.integration.uuid}/">Acme POS</a>'
    assert back in client.get(url(package)).content.decode()
    response = client.post(url(package, "secret"),
                           {"field": "client_id", "confirm_password": PASSWORD})
    assert back in response.content.decode()


def test_without_a_live_token_the_reveal_page_leads_to_check_now(client, lead,
                                                                 sandbox_version):
    client.force_login(lead)
    package = sandbox_version.package
    html = client.get(f"/packages/{package.uuid}/reveal/").content.decode()
    assert "No live token: run a check first" in html
    assert f'href="/integrations/{package.integration.uuid}/#env-sandbox"' in html
