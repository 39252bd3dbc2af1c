"""static/js/paste.js reads every example of tests/test_paste.py exactly as the server does, so
what a lead sees filled in the browser is what the server would take from the same paste."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.pages import login, paste
from tests.test_paste import BAD_EXAMPLES, EXAMPLES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_browser_parser_agrees_with_the_server_on_every_example(page, lead):
    login(page, "lead")
    page.goto("/integrations/new/")
    page.wait_for_function("window.AisleKeysPaste !== undefined")
    for name, text, expected, environment in EXAMPLES:
        result = page.evaluate("text => window.AisleKeysPaste.parse(text)", text)
        assert result["error"] is None, name
        assert result["values"] == expected, name
        assert result["environment"] == environment, name
    for name, text, message in BAD_EXAMPLES:
        result = page.evaluate("text => window.AisleKeysPaste.parse(text)", text)
        assert result["values"] == {}, name
        assert result["error"].startswith(message), name


def test_an_unreadable_paste_is_explained_in_the_browser_too(page, lead):
    login(page, "lead")
    page.goto("/integrations/new/")
    paste(page, page.get_by_label("The cURL command or the Postman environment"),
          "curl -d 'client_secret=abc")
    status = page.locator("#paste-status")
    assert "A quote in the pasted command is not closed" in status.inner_text()
    assert "paste-status-error" in status.get_attribute("class")
    assert page.get_by_label("Client secret").input_value() == ""



def test_a_paste_made_before_the_script_loaded_still_fills_the_fields(page, lead):
    # Hold paste.js back until the box already holds the paste: on a slow link the lead's input
    # event comes before the script's listener exists, and the paste must not be lost.
    held = []
    page.route("**/js/paste.*js", lambda route: held.append(route))
    login(page, "lead")
    page.goto("/integrations/new/", wait_until="commit")
    box = page.get_by_label("The cURL command or the Postman environment")
    box.fill("curl -d 'grant_type=password&client_id=early-id&client_secret=early-secret'")
    for _ in range(100):  # the request reaches the route handler through Playwright's loop
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "paste.js was requested"
    assert page.locator("#paste-status").inner_text() == ""
    held[0].continue_()
    expect(page.locator("#paste-status")).to_contain_text(
        "Filled from the paste: client ID and client secret.")
    assert page.get_by_label("Client ID").input_value() == "early-id"


def test_a_paste_fills_only_the_empty_fields_and_names_the_typed_ones_it_kept(page, lead):
    # The help text says "It fills the fields you leave empty", and the server's merge (without
    # JavaScript) keeps typed values: the browser must not overwrite them either.
    login(page, "lead")
    page.goto("/integrations/new/")
    page.get_by_label("Client ID").fill("typed-client-id")
    page.get_by_label("User name").fill("same@example.com")
    paste(page, page.get_by_label("The cURL command or the Postman environment"),
          "curl -d 'grant_type=password&client_id=pasted-client-id&client_secret=pasted-secret"
          "&username=same@example.com'")
    status = page.locator("#paste-status")
    expect(status).to_contain_text("Filled from the paste: client secret.")
    expect(status).to_contain_text("Kept what you typed in the client ID")
    assert "user name" not in status.inner_text()  # it held the same value: nothing to say
    assert "pasted-client-id" not in status.inner_text()  # names only, never values
    assert page.get_by_label("Client ID").input_value() == "typed-client-id"
    assert page.get_by_label("Client secret").input_value() == "pasted-secret"
    assert page.get_by_label("User name").input_value() == "same@example.com"


def test_typed_text_is_read_when_the_lead_leaves_the_box_not_at_each_keystroke(page, lead):
    # Read at each keystroke, "Client ID: a" filled the field with "a" and cleared the box: the
    # rest of what was typed was lost and the field kept the "a".
    login(page, "lead")
    page.goto("/integrations/new/")
    box = page.get_by_label("The cURL command or the Postman environment")
    box.press_sequentially("Client ID: abcdef\nClient secret: s3cret-typed")
    assert page.get_by_label("Client ID").input_value() == ""
    assert box.input_value() == "Client ID: abcdef\nClient secret: s3cret-typed"
    assert page.locator("#paste-status").inner_text() == ""
    box.press("Tab")  # leaving the box: now it is read, whole
    expect(page.locator("#paste-status")).to_contain_text(
        "Filled from the paste: client ID and client secret.")
    assert page.get_by_label("Client ID").input_value() == "abcdef"
    assert page.get_by_label("Client secret").input_value() == "s3cret-typed"
    expect(box).to_have_value("")
