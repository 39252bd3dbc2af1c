"""static/js/paste.js reads every example of tests/test_paste.py exactly as the server does, so
what a lead sees filled in the browser is what the server would take from the same paste."""

from __future__ import annotations

import pytest

from tests.e2e.pages import login
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
    page.get_by_label("The cURL command or the Postman environment").fill(
        "curl -d 'client_secret=abc")
    status = page.locator("#paste-status")
    assert "A quote in the pasted command is not closed" in status.inner_text()
    assert "paste-status-error" in status.get_attribute("class")
    assert page.get_by_label("Client secret").input_value() == ""

