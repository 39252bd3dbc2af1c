"""The password change page says what a new password must be before the user types one.

A user learned "at least 12 characters" only from the error after a failed save. The rules are
the configured validators' own words (AUTH_PASSWORD_VALIDATORS), shown under "New password" and
tied to it by aria-describedby, so a screen reader reads them with the field too.
"""

from __future__ import annotations

from html.parser import HTMLParser

from django.contrib.auth.password_validation import password_validators_help_texts
from django.urls import reverse


class _Described(HTMLParser):
    """The text of each element with an id, and the aria-describedby of new_password1."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []
        self.describedby = ""

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if found.get("name") == "new_password1":
            self.describedby = found.get("aria-describedby") or ""
        if tag in ("input", "br", "meta", "link", "img"):
            return
        self.open.append((tag, found.get("id")))
        if found.get("id"):
            self.text[found["id"]] = ""

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, element_id in self.open:
            if element_id:
                self.text[element_id] += data


def test_the_rules_are_shown_before_a_failed_save_and_tied_to_new_password(client, lead):
    client.force_login(lead)
    response = client.get(reverse("password_change"))
    assert response.status_code == 200
    page = _Described()
    page.feed(response.content.decode())
    assert page.describedby, "new_password1 has no aria-describedby"
    described = " ".join(page.text.get(ref, "") for ref in page.describedby.split())
    assert "at least 12 characters" in described
    # Every configured rule, in the validators' own words.
    rules = password_validators_help_texts()
    assert len(rules) == 4
    for rule in rules:
        assert rule in described
