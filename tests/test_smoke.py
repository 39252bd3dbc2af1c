from onboarding.models import AuditEvent
from onboarding.services.audit import audit_verify
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET


def test_onboarding_stores_an_audited_encrypted_version(sandbox_version):
    assert sandbox_version.number == 1
    assert sandbox_version.client_secret == KNOWN_SECRET
    assert sandbox_version.password == KNOWN_PASSWORD
    assert AuditEvent.objects.count() == 2
    assert audit_verify().ok


def test_overview_renders_for_a_lead(client, lead, integration):
    client.force_login(lead)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Acme POS" in response.content
    assert KNOWN_SECRET.encode() not in response.content
