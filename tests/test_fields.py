"""The words for a version's fields: one vocabulary, acronyms kept in capitals."""

from __future__ import annotations

import pytest

from onboarding.models import PackageVersion
from onboarding.services.fields import FIELD_LABELS, field_label, labels


def test_labels_read_as_a_sentence():
    assert labels(["client_id"]) == "client ID"
    assert labels(["client_id", "username", "password"]) == "client ID, user name and password"


@pytest.mark.parametrize(("name", "words"), [
    ("client_id", "Client ID"), ("client_secret", "Client secret"), ("username", "User name"),
    ("company_id", "Company ID"), ("location_id", "Location ID"),
    ("response_format", "Response format"), ("notes", "Notes"),
])
def test_a_capitalised_label_keeps_its_acronym(name, words):
    assert field_label(name, capitalised=True) == words


def test_every_field_of_a_version_has_words():
    assert set(FIELD_LABELS) == set(PackageVersion.CREDENTIAL_FIELDS + PackageVersion.CONFIG_FIELDS)


def test_an_unknown_code_reads_without_underscores():
    assert field_label("http_status") == "http status"
    assert field_label("http_status", capitalised=True) == "Http status"
