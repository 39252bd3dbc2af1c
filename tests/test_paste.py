"""Reading an onboarding package from pasted text (onboarding/services/paste.py).

EXAMPLES is shared with tests/e2e/test_paste_js.py, which runs static/js/paste.js in the browser
on the same texts, so the server and the browser read a paste the same way.
"""

from __future__ import annotations

import json

import pytest

from onboarding.services.paste import PasteError, labels, paste_parse

GUIDE_CURL = (
    'curl -X POST "https://accountsrc.iqmetrix.net/v1/oauth2/token" '
    '-H "Content-Type: application/x-www-form-urlencoded" '
    "-d 'grant_type=password&client_id=aislekeys-demo&client_secret=demo-client-secret"
    "&username=demo@aislekeys.test&password=demo-password'"
)
DEMO = {
    "client_id": "aislekeys-demo",
    "client_secret": "demo-client-secret",
    "username": "demo@aislekeys.test",
    "password": "demo-password",
}

POSTMAN_ENVIRONMENT = json.dumps({
    "id": "5b0c3c1e-0000-4000-8000-000000000000",
    "name": "iQmetrix Sandbox",
    "values": [
        {"key": "ClientId", "value": "acme-client", "type": "default", "enabled": True},
        {"key": "client_secret", "value": "s3cr3t+/=", "type": "secret", "enabled": True},
        {"key": "UserName", "value": "api@acme.example", "type": "default", "enabled": True},
        {"key": "Password", "value": "pa ss", "type": "secret", "enabled": True},
        {"key": "CompanyId", "value": "14146", "type": "default", "enabled": True},
        {"key": "AccessToken", "value": "{{token}}", "type": "default", "enabled": True},
    ],
    "_postman_variable_scope": "environment",
}, indent=2)

# (name, pasted text, expected values, expected environment)
EXAMPLES: list[tuple[str, str, dict[str, str], str | None]] = [
    ("guide curl in one line", GUIDE_CURL, DEMO, "sandbox"),
    (
        "separate data pieces over continued lines, url-encoded values, double quotes",
        'Hello,\n\nhere is your Production package. Don\'t share it.\n\n'
        'curl -X POST "https://accounts.iqmetrix.net/v1/oauth2/token" \\\n'
        '  -H "Content-Type: application/x-www-form-urlencoded" \\\n'
        '  --data "grant_type=password" \\\n'
        '  --data "client_id=prod%20client" \\\n'
        '  -d "client_secret=a%2Bb%26c" \\\n'
        "  --data-urlencode 'username=lead+api@acme.example' \\\n"
        '  --data-urlencode "password=p&ss=word"\n\nRegards, iQmetrix',
        {"client_id": "prod client", "client_secret": "a+b&c",
         "username": "lead+api@acme.example", "password": "p&ss=word"},
        "production",
    ),
    (
        "attached options and typographic quotes from a mail program",
        "$ curl -XPOST \u201chttps://accountsrc.iqmetrix.net/v1/oauth2/token\u201d "
        "-d\u2018grant_type=password&client_id=c1\u2019 --data=client_secret=s1 "
        "-d username=u%40x.example --data-raw password=pw1",
        {"client_id": "c1", "client_secret": "s1", "username": "u@x.example", "password": "pw1"},
        "sandbox",
    ),
    (
        "windows cmd continuations",
        'curl.exe -X POST "https://accountsrc.iqmetrix.net/v1/oauth2/token" ^\r\n'
        ' -d "grant_type=password&client_id=win&client_secret=ws" ^\r\n'
        ' -d "username=w@x.example&password=wp"',
        {"client_id": "win", "client_secret": "ws", "username": "w@x.example", "password": "wp"},
        "sandbox",
    ),
    (
        "client credentials as basic auth and a company in a later url",
        "curl -u basic-id:basic:secret https://accountsrc.iqmetrix.net/v1/oauth2/token "
        "-d grant_type=password -d username=b@x.example -d password=bp "
        "https://entitymanagerrc.iqmetrix.net/v1/Companies(14146)/Locations",
        {"client_id": "basic-id", "client_secret": "basic:secret", "username": "b@x.example",
         "password": "bp", "company_id": "14146"},
        "sandbox",
    ),
    (
        "postman environment with other key spellings",
        POSTMAN_ENVIRONMENT,
        {"client_id": "acme-client", "client_secret": "s3cr3t+/=",
         "username": "api@acme.example", "password": "pa ss", "company_id": "14146"},
        None,
    ),
    (
        "postman collection variables, disabled entries last, variables ignored",
        json.dumps({"info": {"name": "x"}, "variable": [
            {"key": "clientId", "value": "old", "enabled": False},
            {"key": "clientId", "value": "new"},
            {"key": "iqmetrix_client_secret", "value": "{{secret}}"},
            {"key": "location_id", "value": "store-7"},
        ]}),
        {"client_id": "new", "location_id": "store-7"},
        None,
    ),
    (
        "plain json object",
        '{"client_id": "j1", "username": "j@x.example", "company_id": 42, "nested": {"a": 1}}',
        {"client_id": "j1", "username": "j@x.example", "company_id": "42"},
        None,
    ),
    (
        "labelled lines from the body of the e-mail",
        "Hello,\r\n\r\nyour Sandbox package:\r\n"
        "  Client ID: shop-client\r\n"
        "  Client Secret: s3cr3t!:x\r\n"
        "  \u2022 Username: api@shop.example \r\n"
        "  Password = p@ss word\r\n"
        "  Company Id: 14146\r\n"
        "Your password expires: never\r\nNote: keep it safe.",
        {"client_id": "shop-client", "client_secret": "s3cr3t!:x",
         "username": "api@shop.example", "password": "p@ss word", "company_id": "14146"},
        None,
    ),
    (
        "bare form body without curl",
        "'grant_type=password&client_id=bare&client_secret=bs&username=z%40x.example&password='",
        {"client_id": "bare", "client_secret": "bs", "username": "z@x.example"},
        None,
    ),
]

# urlsplit reads "]" in the host as the end of an IPv6 address and raises ValueError.
STRAY_BRACKET_CURL = ("curl -X POST https://accountsrc.iqmetrix.net]/v1/oauth2/token?client_id=c"
                      " -d 'grant_type=password&client_secret=BracketSecret1'")

# (name, pasted text, start of the message)
BAD_EXAMPLES: list[tuple[str, str, str]] = [
    ("empty", "   \n", "Nothing was pasted."),
    ("prose", "Dear lead, your package follows.", "Nothing in the pasted text"),
    ("unclosed quote", "curl -d 'client_id=abc&client_secret=def", "A quote in the pasted"),
    ("broken json", '{"values": [{"key": "client_id", "value": "x"}', "The pasted text starts"),
    ("curl without a package", 'curl "https://accountsrc.iqmetrix.net/v1/ping"',
     "Nothing in the pasted text"),
    ("stray bracket in the url", STRAY_BRACKET_CURL, "An address in the pasted command"),
]


@pytest.mark.parametrize(("name", "text", "expected", "environment"), EXAMPLES,
                         ids=[e[0] for e in EXAMPLES])
def test_paste_reads_the_package_from_each_example(name, text, expected, environment):
    pasted = paste_parse(text=text)
    assert pasted.values() == expected
    assert pasted.environment == environment


@pytest.mark.parametrize(("name", "text", "message"), BAD_EXAMPLES,
                         ids=[e[0] for e in BAD_EXAMPLES])
def test_unreadable_paste_says_what_to_paste_instead(name, text, message):
    with pytest.raises(PasteError) as caught:
        paste_parse(text=text)
    assert str(caught.value).startswith(message)


def test_error_messages_never_quote_the_pasted_secret():
    with pytest.raises(PasteError) as caught:
        paste_parse(text="curl -d 'client_secret=TopSecret123")
    assert "TopSecret123" not in str(caught.value)


def test_a_url_that_cannot_be_split_is_refused_without_quoting_it():
    with pytest.raises(PasteError) as caught:
        paste_parse(text=STRAY_BRACKET_CURL)
    assert "BracketSecret1" not in str(caught.value) and "iqmetrix.net]" not in str(caught.value)


# Server only: the browser's JSON.parse has no such depth limit, so paste.js reads these as
# incomplete JSON or as JSON without a package, a refusal in other words.
@pytest.mark.parametrize("text", ["[" * 5000, "[" * 5000 + "]" * 5000,
                                  '{"a": ' * 5000 + '"TopSecret123"' + "}" * 5000],
                         ids=["unclosed", "closed", "object"])
def test_json_nested_too_deep_for_the_parser_is_refused_in_words(text):
    with pytest.raises(PasteError, match="nested far deeper than a Postman environment") as caught:
        paste_parse(text=text)
    assert "TopSecret123" not in str(caught.value)


def test_repr_of_a_paste_hides_its_values():
    pasted = paste_parse(text=GUIDE_CURL)
    assert "demo-client-secret" not in repr(pasted)
    assert "demo-password" not in repr(pasted)
    assert "client_secret" in repr(pasted)


def test_too_long_a_paste_is_refused():
    with pytest.raises(PasteError, match="too long"):
        paste_parse(text="client_id=x&" + "a" * 60_000)


def test_labels_read_as_a_sentence():
    assert labels(["client_id"]) == "client ID"
    assert labels(["client_id", "username", "password"]) == "client ID, user name and password"
