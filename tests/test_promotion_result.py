"""After a promotion or an admin rollback the next step is a Production check: the result links
each integration's dashboard page, where Production's Check now is."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from onboarding.models import Environment, Integration
from onboarding.services.promotion import promotion_apply
from tests.conftest import onboard
from tests.test_promotion import PRODUCTION_SECRET, passing_check
from tests.test_promotion_admin import CHANGELIST, USER_PASSWORD, apply_post


@pytest.fixture
def checked(sandbox_version) -> Integration:
    passing_check(sandbox_version)
    return sandbox_version.package.integration


def page_link(integration: Integration) -> str:
    return reverse("dashboard:integration", args=[integration.uuid])


def test_the_promotion_result_links_each_promoted_integrations_page(client, release_manager,
                                                                    checked):
    other = onboard(name="Beta <Kiosk>").package.integration
    passing_check(other.packages.get(environment=Environment.SANDBOX).current_version)
    never_checked = onboard(name="Gamma Shop").package.integration
    client.force_login(release_manager)
    response = apply_post(client, checked, other, never_checked, credentials="copy")
    html = " ".join(response.content.decode().split())
    assert "Promoted (2)" in html and "Not promoted (1)" in html
    for integration, name in ((checked, "Acme POS"), (other, "Beta &lt;Kiosk&gt;")):
        assert (f'<a href="{page_link(integration)}">check Production on {name}\'s '
                "page</a>") in html
    # A refused integration has nothing new in Production to check.
    assert page_link(never_checked) not in html
    response = client.get(page_link(checked))
    assert response.status_code == 200 and "Check now" in response.content.decode()


def test_the_admin_rollback_message_links_the_integrations_page(client, release_manager,
                                                                checked):
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            client_secret=PRODUCTION_SECRET, company_id=555)
    promotion_apply(integration=checked, actor=release_manager, reason="launch",
                    copy_credentials=True, reviewed_sandbox_version=None,
                    reviewed_production_version=None)
    client.force_login(release_manager)
    response = client.post(CHANGELIST, {
        "action": "roll_back_production", "_selected_action": [str(checked.pk)], "post": "yes",
        "to_version": "1", "current_version": "2", "reason": "orders broke",
        "confirm_password": USER_PASSWORD})
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        "Rolled Acme POS Production back to v1 as version 3; it is unverified until a "
        f'Production check passes: <a href="{page_link(checked)}">check Production on its '
        "page</a>."]
    html = client.get(CHANGELIST).content.decode()
    assert f'<a href="{page_link(checked)}">check Production on its page</a>' in html
