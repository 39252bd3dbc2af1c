"""A new integration under a name that is taken: the refusal links to the integration that has
it (its name as the link, escaped), for a user who may view it; anyone else gets the plain
sentence, which says no more than that the name is taken."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.forms import NewIntegrationForm
from onboarding.models import Environment, Integration, Role
from onboarding.services.access import visible_namesake
from onboarding.services.grants import grant_create
from tests.conftest import onboard
from tests.test_package_form import NEW, new_post
from tests.test_paste import GUIDE_CURL


def summary_of(html: str) -> str:
    start = html.index('class="error error-summary"')
    return html[start:html.index("</div>", start)]


@pytest.mark.parametrize("name", ["acme pos", "ACME-POS", "Acme  POS!"])  # name, slug, slug
def test_a_taken_name_links_to_the_integration_that_has_it(client, lead, integration, name):
    client.force_login(lead)
    response = client.post(NEW, new_post(name=name, paste=GUIDE_CURL))
    assert response.status_code == 200
    link = f'<a href="/integrations/{integration.uuid}/">Acme POS</a>'
    assert response.context["form"].errors["name"] == [
        f"An integration with this name already exists: open {link} to edit its packages."]
    assert link in response.content.decode()
    # The summary is a list of links to the fields: it gives the words, not a link in a link.
    summary = summary_of(response.content.decode())
    assert ('<a href="#id_name">Integration name: An integration with this name already exists: '
            "open Acme POS to edit its packages.</a>") in summary
    assert Integration.objects.count() == 1


def test_the_links_text_is_the_integrations_name_escaped(client, lead):
    taken = onboard("Tom & Jerry's <i>POS</i>").package.integration
    client.force_login(lead)
    response = client.post(NEW, new_post(name="Tom & Jerry's <i>POS</i>", paste=GUIDE_CURL))
    html = response.content.decode()
    assert (f'<a href="/integrations/{taken.uuid}/">Tom &amp; Jerry&#x27;s &lt;i&gt;POS&lt;/i&gt;'
            "</a>") in html
    assert "<i>POS</i>" not in html
    assert "open Tom &amp; Jerry&#x27;s &lt;i&gt;POS&lt;/i&gt; to edit" in summary_of(html)


@pytest.mark.parametrize("who", ["outsider", "nobody"])
def test_someone_who_may_not_view_it_gets_the_plain_sentence(integration, outsider, who):
    user = outsider if who == "outsider" else None
    form = NewIntegrationForm(new_post(name="acme pos", paste=GUIDE_CURL),
                              environments=[Environment.SANDBOX], user=user)
    assert not form.is_valid()
    assert form.errors["name"] == ["An integration with this name already exists: open it from "
                                   "the overview to edit its packages."]
    assert "Acme POS" not in str(form.errors) and str(integration.uuid) not in str(form.errors)


def test_the_namesake_is_only_one_the_user_may_view(integration, outsider, superuser):
    other = onboard("Northwind Tablets").package.integration
    grant_create(user=outsider, role=Role.VIEW, valid_until=timezone.now() + timedelta(hours=1),
                 reason="support", granted_by=superuser, integration=other)
    assert visible_namesake(user=outsider, name="northwind tablets",
                            slug="northwind-tablets") == other
    assert visible_namesake(user=outsider, name="acme pos", slug="acme-pos") is None
    assert visible_namesake(user=superuser, name="acme pos", slug="acme-pos") == integration
