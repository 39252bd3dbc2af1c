"""The lead's package form: /integrations/new/ and /integrations/<uuid>/packages/<env>/edit/,
each with Save and "Save and check"; the paste box; secrets write-only; Production step-up."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User

from onboarding.crypto import generate_key_entry
from onboarding.models import (
    AuditEvent,
    CheckTrigger,
    ConnectivityCheck,
    Environment,
    Integration,
    PackageVersion,
)
from onboarding.services.audit import AuditAction
from onboarding.services.packages import PackageChanged, package_current, package_store
from onboarding.simulator import DEMO_ACCOUNT
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, make_user, onboard, package_data
from tests.test_paste import GUIDE_CURL, STRAY_BRACKET_CURL

USER_PASSWORD = "unused-in-tests-1234"
NEW = "/integrations/new/"
NEW_CHECK = "/integrations/new/check/"


def edit_url(integration: Integration, environment: str = "sandbox", *, check: bool = False
             ) -> str:
    suffix = "check/" if check else ""
    return f"/integrations/{integration.uuid}/packages/{environment}/edit/{suffix}"


def new_post(**overrides: str) -> dict[str, str]:
    data = {"name": "Shop Floor", "environment": "sandbox", "paste": "", "client_id": "",
            "client_secret": "", "username": "", "password": "", "company_id": "",
            "location_id": "", "response_format": "json", "notes": ""}
    data.update(overrides)
    return data


def edit_post(**overrides: str) -> dict[str, str]:
    data = new_post(**overrides)
    data.pop("name"), data.pop("environment")
    return data


def assert_no_secret(content: bytes, *values: str) -> None:
    for value in (KNOWN_SECRET, KNOWN_PASSWORD, DEMO_ACCOUNT.client_secret,
                  DEMO_ACCOUNT.password, *values):
        assert value.encode() not in content


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- new integration ---------------------------------------------------------------------------

def test_a_lead_adds_a_sandbox_package_by_pasting_the_guide_curl(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(paste=GUIDE_CURL), follow=True)
    integration = Integration.objects.get(name="Shop Floor")
    assert response.redirect_chain[-1][0] == f"/integrations/{integration.uuid}/"
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.client_id, version.client_secret, version.username, version.password) == (
        DEMO_ACCOUNT.client_id, DEMO_ACCOUNT.client_secret, DEMO_ACCOUNT.username,
        DEMO_ACCOUNT.password)
    assert version.created_by == lead
    text = " ".join(messages_of(response))
    assert "Saved Sandbox version 1 of Shop Floor." in text
    assert "Taken from the pasted text: client ID, client secret, user name and password." in text
    # A first version is not "edited": its source says how it was entered.
    assert "by lead · Entered in a form" in response.content.decode()
    assert_no_secret(response.content)


def test_the_new_page_shows_labelled_fields_and_the_paste_box_for_a_lead(client, lead):
    client.force_login(lead)
    response = client.get(NEW)
    assert response.status_code == 200
    content = response.content.decode()
    for label in ("Integration name", "Client ID", "Client secret", "User name",
                  "Paste from the onboarding e-mail", "Save and check"):
        assert label in content
    assert 'type="password" name="client_secret"' in content
    assert "js/paste.js" in content
    # A lead may edit Sandbox only, so Production is not offered and no password is asked.
    assert 'value="production"' not in content
    assert 'name="confirm_password"' not in content


def test_save_and_check_stores_and_runs_the_check_against_the_simulator(client, lead,
                                                                        sandbox_simulator):
    client.force_login(lead)
    response = client.post(NEW_CHECK, new_post(paste=GUIDE_CURL), follow=True)
    check = ConnectivityCheck.objects.get()
    assert check.trigger == CheckTrigger.SAVE
    assert check.outcome == "ok"
    assert check.requested_by == lead
    assert any(m.startswith("Sandbox check: OK.") for m in messages_of(response))
    assert sandbox_simulator.token_requests == 1


def test_save_and_check_with_a_wrong_password_says_so_in_plain_words(client, lead,
                                                                     sandbox_simulator):
    client.force_login(lead)
    response = client.post(NEW_CHECK, new_post(
        client_id=DEMO_ACCOUNT.client_id, client_secret=DEMO_ACCOUNT.client_secret,
        username=DEMO_ACCOUNT.username, password="not-the-password"), follow=True)
    check = ConnectivityCheck.objects.get()
    assert check.outcome == "invalid_credentials"
    message = next(m for m in messages_of(response) if m.startswith("Sandbox check:"))
    assert message.startswith("Sandbox check: Invalid user name or password.")
    assert check.message in message
    assert "not-the-password" not in response.content.decode()


def test_save_and_check_without_every_credential_saves_and_says_what_is_missing(client, lead,
                                                                                sandbox_simulator):
    client.force_login(lead)
    response = client.post(NEW_CHECK, new_post(client_id="cid", username="a@b.example"),
                           follow=True)
    assert PackageVersion.objects.count() == 1
    assert not ConnectivityCheck.objects.exists()
    assert any(m.startswith("No check was run:") for m in messages_of(response))


def test_an_e_mail_that_is_not_one_is_explained_next_to_the_field_and_nothing_is_saved(client,
                                                                                      lead):
    client.force_login(lead)
    events = AuditEvent.objects.count()
    response = client.post(NEW, new_post(client_id="cid", username="not-an-email",
                                         client_secret="typed-secret-value"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "The user name must be the API user&#x27;s e-mail address." in content
    assert 'id="id_username_error"' in content
    assert "Nothing was saved" in content
    assert not Integration.objects.exists()
    assert AuditEvent.objects.count() == events
    # The typed secret is not sent back; the page asks for it again instead.
    assert "typed-secret-value" not in content
    assert "Enter it again: secrets are never sent back to the page." in content


def test_every_problem_is_shown_at_once(client, lead, integration):
    client.force_login(lead)
    response = client.post(edit_url(integration), edit_post(username="not-an-email",
                                                            company_id="x12"))
    content = response.content.decode()
    assert "The company ID is a positive whole number." in content
    assert "The user name must be the API user&#x27;s e-mail address." in content
    # ...and listed in the summary the page opens on, each linked to its field.
    summary = content[content.index('class="error error-summary"'):]
    summary = summary[:summary.index("</div>")]
    assert "autofocus" in summary.split(">")[0]
    assert ('<a href="#id_username">User name (e-mail): The user name must be the API user&#x27;s '
            "e-mail address.</a>") in summary
    assert '<a href="#id_company_id">Company ID: The company ID is a positive' in summary


def test_an_empty_client_id_is_explained_next_to_the_field(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(username="api@acme.example"))
    assert "Enter the client ID from the onboarding package." in response.content.decode()
    assert not PackageVersion.objects.exists()


def test_a_paste_that_cannot_be_read_says_what_to_paste_and_saves_nothing(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(paste="curl -d 'client_secret=Hidden123"))
    content = response.content.decode()
    assert "A quote in the pasted command is not closed" in content
    assert "Hidden123" not in content
    assert not Integration.objects.exists()


@pytest.mark.parametrize(("paste", "message"), [
    ("[" * 5000, "The pasted JSON is nested far deeper than a Postman environment"),
    (STRAY_BRACKET_CURL, "An address in the pasted command is not a valid URL"),
], ids=["deep json", "bad url"])
def test_a_paste_the_parser_chokes_on_is_refused_in_words_and_saves_nothing(client, lead, paste,
                                                                            message):
    client.force_login(lead)
    # Every field typed: only the paste stands in the way of saving.
    response = client.post(NEW, new_post(paste=paste, client_id="typed-client",
                                         client_secret="typed-secret",
                                         username="api@acme.example", password="typed-pass"))
    assert response.status_code == 200
    content = response.content.decode()
    assert message in content
    assert "BracketSecret1" not in content
    assert not Integration.objects.exists() and not PackageVersion.objects.exists()


def test_typed_values_win_over_the_paste(client, lead):
    client.force_login(lead)
    client.post(NEW, new_post(paste=GUIDE_CURL, client_id="typed-client"))
    version = PackageVersion.objects.get()
    assert version.client_id == "typed-client"
    assert version.client_secret == DEMO_ACCOUNT.client_secret


def test_a_second_integration_with_the_same_name_is_refused(client, lead, integration):
    client.force_login(lead)
    response = client.post(NEW, new_post(name="acme pos", paste=GUIDE_CURL))
    assert "An integration with this name already exists" in response.content.decode()
    assert Integration.objects.count() == 1


def test_a_name_with_control_characters_is_refused_at_the_field(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(name="Acme\x1b[31m POS", paste=GUIDE_CURL))
    assert response.status_code == 200
    assert "cannot hold control characters" in response.context["form"].errors["name"][0]
    assert not Integration.objects.exists()


def test_a_name_in_another_script_makes_an_integration(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(name="Кофейня", paste=GUIDE_CURL))
    assert response.status_code == 302
    assert Integration.objects.get().slug == "xn--e1aiboc0b6e"


def test_an_outsider_may_not_add_integrations(client, outsider):
    client.force_login(outsider)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, new_post(paste=GUIDE_CURL)).status_code == 403
    assert not Integration.objects.exists()


def test_a_lead_posting_a_new_production_package_is_refused_and_audited(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(paste=GUIDE_CURL, environment="production"))
    assert response.status_code == 403
    assert not Integration.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert (event.actor_name, event.environment) == ("lead", "production")


def test_the_check_urls_accept_only_post(client, lead, integration):
    client.force_login(lead)
    assert client.get(NEW_CHECK).status_code == 405
    assert client.get(edit_url(integration, check=True)).status_code == 405


def test_posted_credentials_are_hidden_from_error_reports(client, lead):
    client.force_login(lead)
    response = client.post(NEW, new_post(paste=GUIDE_CURL))
    hidden = response.wsgi_request.sensitive_post_parameters
    assert {"client_secret", "password", "paste", "confirm_password"} <= set(hidden)


# --- editing an existing package ------------------------------------------------------------------

def test_the_edit_page_masks_identifiers_and_never_renders_secrets(client, lead, integration):
    client.force_login(lead)
    response = client.get(edit_url(integration))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Now cl…56. Leave empty to keep it." in content  # client-abcdef123456, masked
    assert "client-abcdef123456" not in content
    assert "api.user@example.com" not in content
    assert "Now set. Leave empty to keep it." in content
    assert_no_secret(response.content)


def test_saving_an_unchanged_form_keeps_the_current_version(client, lead, integration):
    client.force_login(lead)
    events = AuditEvent.objects.count()
    # Blank secrets keep the current ones; the other fields repeat what v1 holds.
    response = client.post(edit_url(integration), edit_post(
        client_id="client-abcdef123456", username="api.user@example.com",
        company_id="14146", location_id="loc-1"), follow=True)
    assert ("Acme POS Sandbox version 1 already holds these values: nothing new was saved."
            in messages_of(response))
    assert PackageVersion.objects.filter(package__integration=integration).count() == 1
    assert AuditEvent.objects.count() == events
    # One changed field is a new version again.
    client.post(edit_url(integration), edit_post(
        client_id="client-abcdef123456", username="api.user@example.com",
        company_id="14146", location_id="loc-2"))
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert version.number == 2 and version.location_id == "loc-2"


def test_blank_fields_keep_the_current_values(client, lead, integration):
    client.force_login(lead)
    response = client.post(edit_url(integration), edit_post(company_id="77", location_id="s-9"))
    assert response.status_code == 302
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert version.number == 2
    assert version.client_id == "client-abcdef123456"
    assert version.username == "api.user@example.com"
    assert (version.client_secret, version.password) == (KNOWN_SECRET, KNOWN_PASSWORD)
    assert (version.company_id, version.location_id) == (77, "s-9")


def test_a_paste_fills_the_blank_fields_of_an_existing_package(client, lead, integration):
    client.force_login(lead)
    client.post(edit_url(integration), edit_post(paste=GUIDE_CURL))
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.client_id, version.password) == (DEMO_ACCOUNT.client_id,
                                                     DEMO_ACCOUNT.password)


def test_an_error_on_edit_warns_that_blank_secrets_would_keep_the_old_ones(client, lead,
                                                                          integration):
    client.force_login(lead)
    response = client.post(edit_url(integration),
                           edit_post(paste=GUIDE_CURL, company_id="not-a-number"))
    content = response.content.decode()
    assert "The company ID is a positive whole number." in content
    assert "Left empty, the current one is kept." in content
    assert "Taken from the pasted text: client ID, client secret, user name and password" in content
    assert_no_secret(response.content)
    assert PackageVersion.objects.count() == 1


def test_save_and_check_on_edit_redirects_to_the_integration_with_the_outcome(
        client, lead, integration, sandbox_simulator):
    client.force_login(lead)
    response = client.post(edit_url(integration, check=True), edit_post(), follow=True)
    assert response.redirect_chain[-1][0] == f"/integrations/{integration.uuid}/"
    assert ConnectivityCheck.objects.get().outcome == "ok"
    assert any(m.startswith("Sandbox check: OK.") for m in messages_of(response))


def base_version_of(page: bytes) -> str:
    """The hidden "based on version N" value of a rendered package form."""
    found = re.search(r'<input type="hidden" name="base_version" value="(\d+)"', page.decode())
    assert found, "the form carries no base version"
    return found.group(1)


# The configuration fields as the edit page of the `integration` fixture's v1 shows them.
V1_AS_SHOWN = {"client_id": "client-abcdef123456", "username": "api.user@example.com",
               "company_id": "14146", "location_id": "loc-1", "notes": ""}


def test_a_form_based_on_the_current_version_saves_a_new_version(client, lead, integration):
    client.force_login(lead)
    base = base_version_of(client.get(edit_url(integration)).content)
    assert base == "1"
    response = client.post(edit_url(integration), edit_post(
        **V1_AS_SHOWN | {"notes": "Ask for Dana"}, base_version=base))
    assert response.status_code == 302
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.number, version.notes) == (2, "Ask for Dana")


def test_a_form_opened_before_a_colleagues_save_is_refused_instead_of_undoing_it(
        client, lead, integration):
    client.force_login(lead)
    base = base_version_of(client.get(edit_url(integration)).content)
    onboard(notes="Use location 7", location_id="loc-7")  # a colleague saves v2 meanwhile
    events = AuditEvent.objects.count()
    mine = edit_post(**V1_AS_SHOWN | {"notes": "Ask for Dana"}, client_secret="typed-secret-77",
                     base_version=base)
    response = client.post(edit_url(integration), mine)

    assert response.status_code == 200
    content = response.content.decode()
    # Who saved, which fields, and what the form now holds: names only, never a value.
    assert ("Someone saved version 2 since you opened this form, changing location ID and "
            "notes. The form now shows their location ID. You changed the notes too: yours is "
            "kept, compare it with version 2. Review the form and save again.") in content
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.number, version.notes, version.location_id) == (2, "Use location 7", "loc-7")
    assert AuditEvent.objects.count() == events
    # What was typed stays on the page, except the secret, which is asked for again; the field
    # the lead left alone now shows the colleague's value.
    assert field_value(content, "notes") == "Ask for Dana"
    assert field_value(content, "location_id") == "loc-7"
    assert "typed-secret-77" not in content
    assert "Enter it again: secrets are never sent back to the page." in content
    assert_no_secret(response.content)
    # The page now shows v2 and is based on it: saving it again, having looked, goes ahead
    # and keeps both changes.
    assert "Saving makes version 3" in content
    assert base_version_of(response.content) == "2"
    again = client.post(edit_url(integration),
                        form_as_shown(content, client_secret="typed-secret-77"))
    assert again.status_code == 302
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.number, version.notes, version.location_id, version.client_secret) == (
        3, "Ask for Dana", "loc-7", "typed-secret-77")


def field_value(content: str, name: str) -> str:
    """The value a page's input or textarea `name` shows, unescaped."""
    import html

    found = (re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', content, re.S)
             or re.search(rf'<input type="[a-z]+" name="{name}" value="([^"]*)"', content)
             or re.search(rf'<input type="[a-z]+" name="{name}"()', content))
    assert found, name
    return html.unescape(found.group(1))


def form_as_shown(content: str, **typed: str) -> dict[str, str]:
    """What a browser posts back from the edit page as shown, plus what the user types."""
    names = ("client_id", "username", "company_id", "location_id", "notes", "base_version")
    shown = {name: field_value(content, name) for name in names}
    return edit_post(**shown | {"response_format": "json"} | typed)


def test_a_refused_form_shows_the_colleagues_change_so_saving_again_keeps_it(
        client, lead, integration):
    """Lead A opened v1 and edits only the notes; B saves v2 with another location. A's save
    is refused, and saving again as the page now shows it must not put A's old location back."""
    client.force_login(lead)
    base = base_version_of(client.get(edit_url(integration)).content)
    onboard(location_id="loc-2")  # v2 by a colleague
    response = client.post(edit_url(integration), edit_post(
        **V1_AS_SHOWN | {"notes": "Ask for Dana"}, base_version=base))
    content = response.content.decode()
    assert ("Someone saved version 2 since you opened this form, changing location ID. The form "
            "now shows their location ID. Review the form and save again.") in content
    assert field_value(content, "location_id") == "loc-2"
    assert field_value(content, "notes") == "Ask for Dana"
    assert client.post(edit_url(integration), form_as_shown(content)).status_code == 302
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.number, version.location_id, version.notes) == (3, "loc-2", "Ask for Dana")


def test_the_refusal_names_the_colleague_who_saved(client, lead, integration):
    colleague = make_user("casey", "Integration leads")
    client.force_login(lead)
    package_store(integration=integration, environment=Environment.SANDBOX, actor=colleague,
                  data=package_data(company_id=777), based_on=1)
    response = client.post(edit_url(integration), edit_post(
        **V1_AS_SHOWN | {"notes": "x"}, base_version="1"))
    content = response.content.decode()
    assert "casey saved version 2 since you opened this form, changing company ID." in content
    assert field_value(content, "company_id") == "777"


def test_a_second_click_on_save_is_not_refused_as_a_colleagues_change(client, lead, integration):
    client.force_login(lead)
    post = edit_post(**V1_AS_SHOWN | {"notes": "Ask for Dana"}, base_version="1")
    assert client.post(edit_url(integration), post).status_code == 302
    second = client.post(edit_url(integration), post, follow=True)  # the same form again
    assert second.redirect_chain, second.content.decode()[:500]
    assert ("Acme POS Sandbox version 2 already holds these values: nothing new was saved."
            in messages_of(second))
    assert PackageVersion.objects.filter(package__integration=integration).count() == 2


@pytest.mark.parametrize("marker", ["abc", "-1", "1.5"])
def test_an_altered_version_marker_is_named_in_the_error_summary(client, lead, integration,
                                                                 marker):
    client.force_login(lead)
    response = client.post(edit_url(integration), edit_post(
        **V1_AS_SHOWN | {"notes": "x"}, base_version=marker))
    assert response.status_code == 200
    assert ("This form does not say which version it was filled from; reload the page and "
            "enter your changes again.") in response.content.decode()
    assert PackageVersion.objects.filter(package__integration=integration).count() == 1


def test_the_store_service_refuses_a_stale_base_and_accepts_none_for_a_first_version(
        integration):
    onboard(notes="Use location 7")  # v2
    with pytest.raises(PackageChanged, match="Someone saved version 2 since you opened"):
        package_store(integration=integration, environment=Environment.SANDBOX,
                      data=package_data(notes=""), based_on=1)
    assert PackageVersion.objects.filter(package__integration=integration).count() == 2
    # 0 means "there was no version": right for a first Production package, stale otherwise.
    stored = package_store(integration=integration, environment=Environment.PRODUCTION,
                           data=package_data(), based_on=0)
    assert (stored.new, stored.version.number) == (True, 1)
    with pytest.raises(PackageChanged):
        package_store(integration=integration, environment=Environment.PRODUCTION,
                      data=package_data(notes="again"), based_on=0)
    # None: no form that could go stale (the `onboard` command states every value).
    assert package_store(integration=integration, environment=Environment.SANDBOX,
                         data=package_data(notes="from onboard")).version.number == 3


def test_an_unknown_environment_is_404(client, lead, integration):
    client.force_login(lead)
    assert client.get(edit_url(integration, "staging")).status_code == 404


def test_an_outsider_gets_404_on_the_edit_page(client, outsider, integration):
    client.force_login(outsider)
    assert client.get(edit_url(integration)).status_code == 404


def test_a_lead_may_not_edit_production_and_the_attempt_is_audited(client, lead, integration):
    client.force_login(lead)
    response = client.post(edit_url(integration, "production"), edit_post(paste=GUIDE_CURL))
    assert response.status_code == 403
    assert package_current(integration=integration, environment=Environment.PRODUCTION) is None
    assert AuditEvent.objects.filter(action=AuditAction.DENIED).exists()


def test_an_auditor_may_not_edit_sandbox(client, auditor, integration):
    client.force_login(auditor)
    assert client.get(edit_url(integration)).status_code == 403


# --- Production step-up ---------------------------------------------------------------------------

@pytest.fixture
def logged_in_release_manager(client, release_manager):
    client.post("/accounts/login/", {"username": "release", "password": USER_PASSWORD})
    return release_manager


def production_paste() -> str:
    return GUIDE_CURL.replace("accountsrc.iqmetrix.net", "accounts.iqmetrix.net")


def test_production_asks_for_the_password_again_before_saving(client, logged_in_release_manager,
                                                               integration):
    url = edit_url(integration, "production")
    page = client.get(url).content.decode()
    assert 'name="confirm_password"' in page
    response = client.post(url, edit_post(paste=production_paste()))
    assert "Enter the password you sign in with" in response.content.decode()
    response = client.post(url, edit_post(paste=production_paste(), confirm_password="wrong"))
    assert "That is not your password." in response.content.decode()
    assert package_current(integration=integration, environment=Environment.PRODUCTION) is None
    response = client.post(url, edit_post(paste=production_paste(),
                                          confirm_password=USER_PASSWORD))
    assert response.status_code == 302
    version = package_current(integration=integration, environment=Environment.PRODUCTION)
    assert version.client_id == DEMO_ACCOUNT.client_id
    assert AuditEvent.objects.filter(action=AuditAction.STEP_UP).count() == 1
    # Fresh now: the next visit does not ask again.
    assert 'name="confirm_password"' not in client.get(url).content.decode()


def test_a_paste_for_the_other_environment_is_pointed_out(client, lead, integration):
    client.force_login(lead)
    response = client.post(edit_url(integration), edit_post(paste=production_paste()),
                           follow=True)
    assert any("was for the Production accounts host" in m for m in messages_of(response))


def test_someone_who_may_edit_but_not_check_is_told_no_check_ran(client, integration,
                                                                 sandbox_simulator):
    editor: User = make_user("editor")
    editor.user_permissions.add(Permission.objects.get(codename="edit_sandbox"))
    client.force_login(editor)
    page = client.get(edit_url(integration)).content.decode()
    assert "Save and check" not in page
    response = client.post(edit_url(integration, check=True), edit_post(), follow=True)
    assert any("you may not run Sandbox checks" in m for m in messages_of(response))
    assert not ConnectivityCheck.objects.exists()


def test_values_the_keys_cannot_decrypt_must_be_entered_again(client, lead, integration,
                                                              settings):
    settings.FIELD_ENCRYPTION_KEYS = generate_key_entry("other")
    client.force_login(lead)
    page = client.get(edit_url(integration)).content.decode()
    assert page.count("cannot be decrypted with the configured keys: enter it again.") == 4
    response = client.post(edit_url(integration), edit_post(client_id="new-client",
                                                            username="new@acme.example"))
    assert "cannot be decrypted with the configured keys; enter it again" in \
        response.content.decode()
    assert PackageVersion.objects.count() == 1
    response = client.post(edit_url(integration), edit_post(
        client_id="new-client", username="new@acme.example", client_secret="new-secret",
        password="new-password"))
    assert response.status_code == 302
    assert package_current(integration=integration,
                           environment=Environment.SANDBOX).client_secret == "new-secret"


def test_a_new_integration_is_not_stored_into_one_created_after_the_form_checked_the_name(
        client, lead, monkeypatch):
    """Between the form's name check and the save, another lead creates the same name: the
    save must say the name is taken, not store a version into their integration."""
    import dashboard.views.package_form as view_module

    real = view_module.package_onboard

    def others_first(**kwargs):
        onboard("Shop Floor", location_id="theirs")
        return real(**kwargs)

    monkeypatch.setattr(view_module, "package_onboard", others_first)
    client.force_login(lead)
    response = client.post(NEW, new_post(paste=GUIDE_CURL))
    assert response.status_code == 200
    assert ("An integration named &#x27;Shop Floor&#x27; already exists: open it from the "
            "overview to edit its packages.") in response.content.decode()
    integration = Integration.objects.get(name="Shop Floor")
    version = package_current(integration=integration, environment=Environment.SANDBOX)
    assert (version.number, version.location_id, version.client_id) == (
        1, "theirs", "client-abcdef123456")


def test_a_current_client_id_with_markup_is_escaped_in_the_help_text(client, superuser):
    # Django renders a field's help text as HTML; the masked client ID came from the package.
    integration = onboard(client_id="<b>client-9876</b>").package.integration
    client.force_login(superuser)
    client.post("/accounts/confirm/", {"password": "unused-in-tests-1234"})
    for url in (f"/integrations/{integration.uuid}/packages/sandbox/edit/",
                f"/admin/onboarding/onboardingpackage/{integration.packages.get().pk}/change/"):
        html = client.get(url).content.decode()
        assert "&lt;b…b&gt;" in html and "<b…b>" not in html, url


@pytest.mark.parametrize(("codenames", "status"), [
    (["view_production"], 404),  # may not see Sandbox at all: nothing to tell
    (["view_sandbox"], 403),     # sees it, may not edit it: told so
])
def test_an_environment_the_user_may_not_see_is_not_found_rather_than_refused(
        db, client, codenames, status):
    integration = onboard().package.integration
    user = make_user("viewer")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    for suffix in ("", "check/"):
        url = f"/integrations/{integration.uuid}/packages/sandbox/edit/{suffix}"
        response = client.post(url, {}) if suffix else client.get(url)
        assert response.status_code == status, url
