"""The words for a package version's fields, the one vocabulary every page, message and audit
detail uses: "client ID" and "Client ID", never "client id" or `client_id`.

A module of its own, without models or other services, so that the parser, checks, promotion,
reveal and the audit log can all share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable

# Field code -> its words in the middle of a sentence, in the order a lead reads the form.
# Acronyms keep their capitals, so a label is never lower-cased or str.capitalize()d as a whole.
FIELD_LABELS: dict[str, str] = {
    "client_id": "client ID",
    "client_secret": "client secret",
    "username": "user name",
    "password": "password",
    "company_id": "company ID",
    "location_id": "location ID",
    "response_format": "response format",
    "notes": "notes",
}


def field_label(name: str, *, capitalised: bool = False) -> str:
    """The words for one field code; `capitalised` for the start of a sentence or a table cell
    ("Client ID"). A code outside the map reads as itself without underscores."""
    words = FIELD_LABELS.get(name, name.replace("_", " "))
    # Only the first character: str.capitalize() would lower the rest ("Client id").
    return words[:1].upper() + words[1:] if capitalised else words


def labels(names: Iterable[str]) -> str:
    """'client ID, user name and password' for a list of field codes, in the given order."""
    words = [field_label(name) for name in names]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"
