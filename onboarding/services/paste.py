"""Reading an onboarding package out of text a lead pastes: the cURL example of iQmetrix's
Authentication guide, a Postman environment (or collection) exported as JSON, or the plain
`Client ID: …` lines of the onboarding e-mail.

Pure parsing: no models, no database, no network. The result holds secrets, so it never shows
them in its repr, and error messages never quote the pasted text. static/js/paste.js does the
same in the browser (so a lead sees the fields filled at once); tests/test_paste.py holds both
to the same examples.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from onboarding.services.fields import field_label

MAX_PASTE_CHARS = 50_000
# Far longer than any "Client secret: …" line of an onboarding e-mail: a longer line is prose or
# garbage, and skipping it before any matching bounds the work spent on each line.
MAX_LABELLED_LINE_CHARS = 1_000

# The fields a paste can fill, in the order a lead reads them in the form (the response format
# and notes are never in an onboarding e-mail or a Postman environment).
PASTED_FIELDS: tuple[str, ...] = ("client_id", "client_secret", "username", "password",
                                  "company_id", "location_id")

# Keys as they appear in the guide's form body and in Postman environments, normalised to
# lower-case letters and digits only: client_id, ClientId and clientId are all "clientid".
_KEYS: dict[str, str] = {
    "clientid": "client_id",
    "clientsecret": "client_secret",
    "username": "username",
    "user": "username",
    "password": "password",
    "companyid": "company_id",
    "locationid": "location_id",
}

# curl options whose next word is request data, and whether curl URL-encodes it itself.
_DATA_OPTIONS: dict[str, bool] = {
    "-d": False,
    "--data": False,
    "--data-raw": False,
    "--data-ascii": False,
    "--data-binary": False,
    "--data-urlencode": True,
}
_USER_OPTIONS = ("-u", "--user")
_POSTMAN_VARIABLE = re.compile(r"^\{\{[^{}]*\}\}$")
_COMPANY_IN_URL = re.compile(r"/companies\((\d+)\)", re.IGNORECASE)
# Line continuations of sh (backslash), cmd.exe (caret) and PowerShell (backtick).
_CONTINUATION = re.compile(r"[\\^`][ \t]*\r?\n")
_CURL_LINE = re.compile(r"^\s*(?:[$>]\s*)?curl(?:\.exe)?\s+", re.IGNORECASE)
_CURL_ANYWHERE = re.compile(r"(?:^|\s)curl(?:\.exe)?\s", re.IGNORECASE)
# Matched against a line already stripped and at most MAX_LABELLED_LINE_CHARS long. Each run of
# characters has one way to be read: a "\s*" next to another "\s*" that may match nothing (the
# old `^\s*[-*•]?\s*`), or a lazy value before a trailing "\s*$", lets the engine try every
# split of a run of spaces, which is quadratic in its length (a 50,000-character paste took
# 16 s). The label's bounded {1,30} keeps its overlap with the "\s*" after it linear.
_LABELLED = re.compile(r"^(?:[-*\u2022]\s*)?([A-Za-z][A-Za-z _-]{1,30}?)\s*[:=]\s*(\S.*)$")
_PLAIN_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


class PasteError(ValueError):
    """The pasted text cannot be read; the message is one plain sentence without the text."""


@dataclass(frozen=True)
class PastedPackage:
    """What was found; None for what was not. `environment` is guessed from the token URL."""

    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    company_id: str | None = None
    location_id: str | None = None
    environment: str | None = None

    def __repr__(self) -> str:  # never show secrets in tracebacks or logs
        return f"PastedPackage(found={self.found()!r}, environment={self.environment!r})"

    def found(self) -> list[str]:
        """Names of the package fields that have a value, in form order."""
        return [name for name in PASTED_FIELDS if getattr(self, name) not in (None, "")]

    def values(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.found()}


def _field_for(key: str) -> str | None:
    normal = re.sub(r"[^a-z0-9]", "", key.lower())
    if normal in _KEYS:
        return _KEYS[normal]
    # Prefixed names such as "iqmetrix_client_id" or "SandboxUserName".
    for suffix in ("clientsecret", "clientid", "username", "password", "companyid", "locationid"):
        if normal.endswith(suffix):
            return _KEYS[suffix]
    return None


def _usable(value: Any) -> str | None:
    """A pasted value as text, or None when it is empty or a Postman {{variable}} reference."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    if not text.strip() or _POSTMAN_VARIABLE.match(text.strip()):
        return None
    return text


def _split_url(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:
        # An unbalanced "[" or "]" around the host (urlsplit reads brackets as an IPv6
        # address), or characters that are not allowed in a host name. The message must not
        # quote the address: the query string may carry credentials.
        raise PasteError(
            "An address in the pasted command is not a valid URL: copy the whole cURL command "
            "again, as it is in the e-mail."
        ) from None


def _environment_of(url: SplitResult) -> str | None:
    host = (url.hostname or "").lower()
    if not host.endswith(".iqmetrix.net"):
        return None
    service = host.split(".", 1)[0]
    if service == "accounts":
        return "production"
    if service.startswith("accounts"):  # accountsrc, accountsdemo, ...
        return "sandbox"
    return None


def _from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, raw in pairs:
        name = _field_for(str(key))
        value = _usable(raw)
        if name and value is not None and name not in found:
            found[name] = value
    return found


# --- Postman JSON ----------------------------------------------------------------------------

def _postman_pairs(document: Any) -> list[tuple[str, Any]]:
    """Key/value pairs of an environment ("values"), a collection ("variable"), a bare list of
    {key, value} items, or a plain object. Enabled entries come before disabled ones."""
    if isinstance(document, dict):
        if "values" in document:
            items = document["values"]
        elif "variable" in document:
            items = document["variable"]
        else:
            return [(k, v) for k, v in document.items() if not isinstance(v, (dict, list))]
    else:
        items = document
    if not isinstance(items, list):
        return []
    entries = [item for item in items if isinstance(item, dict) and "key" in item]
    entries.sort(key=lambda item: item.get("enabled", True) is False)
    return [(str(item["key"]), item.get("value")) for item in entries]


def _parse_json(text: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except ValueError:
        raise PasteError(
            "The pasted text starts like JSON but is not complete JSON: export the Postman "
            "environment again and paste the whole file."
        ) from None
    except RecursionError:
        # json nests one Python call per bracket: a few thousand "[" (well within
        # MAX_PASTE_CHARS) exhaust the stack. A Postman environment is three levels deep.
        raise PasteError(
            "The pasted JSON is nested far deeper than a Postman environment: export the "
            "environment again and paste the whole file."
        ) from None
    return _from_pairs(_postman_pairs(document))


# --- cURL --------------------------------------------------------------------------------------

def _command_line(text: str) -> str:
    """The cURL command alone, as one line: continuations joined, e-mail prose around it left
    out (an apostrophe in "don't" would otherwise open a quote), typographic quotes made plain
    (mail programs "smarten" them)."""
    joined = _CONTINUATION.sub(" ", text).translate(_PLAIN_QUOTES)
    lines = joined.splitlines()
    for line in lines:
        if _CURL_LINE.match(line):
            return _CURL_LINE.sub("curl ", line, count=1)
    return next((line for line in lines if _CURL_ANYWHERE.search(line)), "")


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        raise PasteError(
            "A quote in the pasted command is not closed: copy the whole cURL command, from "
            "curl to the last quote."
        ) from None


def _option_name(word: str) -> str:
    if word.startswith("--"):
        return word.split("=", 1)[0]
    if word[:2] in ("-d", "-u"):
        return word[:2]
    return word


def _option_value(words: list[str], index: int) -> tuple[str, str | None, int]:
    """(option, its value, next index) for words like `-d X`, `-dX`, `--data=X`."""
    word = words[index]
    option = _option_name(word)
    if word != option:  # the value is attached: -dX or --data=X
        return option, word[len(option):].removeprefix("="), index + 1
    value = words[index + 1] if index + 1 < len(words) else None
    return option, value, index + 2


def _data_pairs(data: str, *, curl_encodes: bool) -> list[tuple[str, str]]:
    if not curl_encodes:
        # As the server will read it: form encoding, so %2B is "+" and "+" is a space.
        return parse_qsl(data, keep_blank_values=True)
    # --data-urlencode name=content: curl encodes the content, so it is taken as written.
    if data.startswith("@") or "=" not in data:
        return []
    name, content = data.split("=", 1)
    return [(name, content)] if name and "@" not in name else []


def _parse_curl(text: str) -> tuple[dict[str, str], str | None]:
    words = _words(_command_line(text))
    pairs: list[tuple[str, str]] = []
    environment = company_from_url = None
    index = 0
    while index < len(words):
        word = words[index]
        option = _option_name(word)
        if option in _DATA_OPTIONS or option in _USER_OPTIONS:
            option, value, index = _option_value(words, index)
            if value is None:
                continue
            if option in _DATA_OPTIONS:
                pairs += _data_pairs(value, curl_encodes=_DATA_OPTIONS[option])
            elif ":" in value:  # client authentication as HTTP Basic: id:secret
                client_id, secret = value.split(":", 1)
                pairs += [("client_id", client_id), ("client_secret", secret)]
            continue
        if "://" in word:
            url = _split_url(word)
            environment = environment or _environment_of(url)
            match = _COMPANY_IN_URL.search(word)
            if match and company_from_url is None:
                company_from_url = match.group(1)
            if url.query:  # parameters in the query string: not how iQmetrix wants them
                pairs += parse_qsl(url.query, keep_blank_values=True)
        index += 1
    found = _from_pairs(pairs)
    if company_from_url and "company_id" not in found:
        found["company_id"] = company_from_url
    return found, environment


def _parse_form_body(text: str) -> dict[str, str]:
    """A bare body such as `grant_type=password&client_id=…` copied without the curl around it."""
    body = text.strip().strip("'\"")
    if "=" not in body or any(ch.isspace() for ch in body):
        return {}
    return _from_pairs(parse_qsl(body, keep_blank_values=True))


def _parse_labelled(text: str) -> dict[str, str]:
    """Lines such as `Client ID: abc` or `Password = xyz` from the body of the e-mail. Only exact
    field names count (not "…password" suffixes), so prose around them is ignored."""
    pairs = []
    for line in text.splitlines():
        if len(line) > MAX_LABELLED_LINE_CHARS:
            continue
        match = _LABELLED.match(line.strip())
        if match and re.sub(r"[^a-z0-9]", "", match.group(1).lower()) in _KEYS:
            pairs.append((match.group(1), match.group(2)))
    return _from_pairs(pairs)


def _refuse_invalid_unicode(found: dict[str, str]) -> None:
    """JSON may spell half of a UTF-16 pair on its own ("\\ud800"); json.loads returns it as a
    lone surrogate, which no encoding can store (encrypting the value would fail with a 500).
    Refused by field name: the value may be a secret."""
    for name in PASTED_FIELDS:
        try:
            found.get(name, "").encode("utf-8")
        except UnicodeEncodeError:
            label = field_label(name)
            raise PasteError(
                f"The {label} in the pasted text is not valid Unicode: it holds half of a "
                f"character pair (an escape from \\ud800 to \\udfff). Type the {label} in by "
                "hand, or export the Postman environment again."
            ) from None


def paste_parse(*, text: str) -> PastedPackage:
    """Read an onboarding package from pasted text; raise PasteError when nothing is found."""
    text = (text or "").strip()
    if not text:
        raise PasteError("Nothing was pasted.")
    if len(text) > MAX_PASTE_CHARS:
        raise PasteError("The pasted text is too long: paste only the cURL command or the "
                         "Postman environment.")
    environment = None
    if text[0] in "{[":
        found = _parse_json(text)
    elif _CURL_ANYWHERE.search(text):
        found, environment = _parse_curl(text)
    else:
        found = _parse_form_body(text) or _parse_labelled(text)
    found = {name: value for name, value in found.items() if name in PASTED_FIELDS}
    if found.get("company_id") is not None:
        found["company_id"] = found["company_id"].strip()
    _refuse_invalid_unicode(found)
    if not found:
        raise PasteError(
            "Nothing in the pasted text looks like an onboarding package: paste the whole cURL "
            "command from the e-mail (curl -X POST … -d 'grant_type=password&client_id=…') or the "
            "Postman environment file."
        )
    return PastedPackage(**found, environment=environment)

