"""The reveal page counts the live token down as the cards do (templates/dashboard/_countdown.html,
ticked by static/js/app.js), next to its expiry time, and says in words when it has expired."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from onboarding.models import ConnectivityCheck
from onboarding.services.checks import check_run
from onboarding.services.status import check_expired_token

PASSWORD = "unused-in-tests-1234"


def reveal_url(package, name: str = "") -> str:
    return f"/packages/{package.uuid}/reveal/{name + '/' if name else ''}"


def countdown(html: str, expires_at) -> str:
    """The text of the countdown to `expires_at` in `html` (it fails the test if there is none)."""
    found = re.search(r'<span class="countdown" role="timer" data-expires-at="'
                      + re.escape(expires_at.isoformat()) + r'">([^<]*)</span>', html)
    assert found, "no countdown to the token's expiry"
    return found.group(1)


def test_the_reveal_page_counts_the_live_token_down_next_to_its_expiry_time(
        client, lead, sandbox_simulator, sandbox_version):
    check = check_run(package=sandbox_version.package)
    client.force_login(lead)
    html = client.get(reveal_url(sandbox_version.package)).content.decode()
    assert "valid until" in html and f'<time datetime="{check.expires_at.isoformat()}"' in html
    assert countdown(html, check.expires_at).endswith(" left")
    assert check.access_token not in html


def test_the_shown_token_counts_down_next_to_its_expiry_time(client, lead, sandbox_simulator,
                                                            sandbox_version):
    check = check_run(package=sandbox_version.package)
    client.force_login(lead)
    response = client.post(reveal_url(sandbox_version.package, "token"),
                           {"confirm_password": PASSWORD})
    html = response.content.decode()
    assert response.status_code == 200 and check.access_token in html
    assert "valid until" in html and f'<time datetime="{check.expires_at.isoformat()}"' in html
    assert countdown(html, check.expires_at).endswith(" left")


def test_an_expired_token_is_called_expired_on_the_reveal_page_as_on_its_card(
        client, lead, sandbox_simulator, sandbox_version):
    package = sandbox_version.package
    check = check_run(package=package)
    expired_at = timezone.now() - timedelta(minutes=5)
    ConnectivityCheck.objects.filter(pk=check.pk).update(expires_at=expired_at)
    client.force_login(lead)
    card = client.get(f"/integrations/{package.integration.uuid}/").content.decode()
    html = client.get(reveal_url(package)).content.decode()
    assert countdown(card, expired_at) == countdown(html, expired_at) == "expired"
    assert "was valid until" in html and f'<time datetime="{expired_at.isoformat()}"' in html
    assert "run a check for a new one" in html
    assert "Show the token" not in html  # an expired token is never handed out


def test_check_expired_token_names_only_a_held_token_past_its_expiry(sandbox_simulator,
                                                                    sandbox_version):
    package = sandbox_version.package
    assert check_expired_token(package=package) is None  # never checked
    check = check_run(package=package)
    assert check_expired_token(package=package) is None  # live: the reveal page offers it
    ConnectivityCheck.objects.filter(pk=check.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert check_expired_token(package=package) == check
    ConnectivityCheck.objects.filter(pk=check.pk).update(access_token=None)
    assert check_expired_token(package=package) is None  # nothing held: no token to speak of
