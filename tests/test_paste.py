"""Reading an onboarding package from pasted text (onboarding/services/paste.py).

EXAMPLES is shared with tests/e2e/test_paste_js.py, which runs static/js/paste.js in the browser
on the same texts, so the server and the browser read a paste the same way.
"""

from __future__ import annotations

import json

import pytest

from onboarding.models import Integration, PackageVersion
from onboarding.services.fields import labels
from onboarding.services.paste import MAX_LABELLED_LINE_CHARS, PasteError, paste_parse

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
        "labelled lines split by carriage returns alone",
        "Client ID: cr-client\rClient Secret: cr-secret",
        {"client_id": "cr-client", "client_secret": "cr-secret"},
        None,
    ),
    (
        "a labelled line exactly as long as the limit",
        "Client ID: " + "c" * (MAX_LABELLED_LINE_CHARS - len("Client ID: ")),
        {"client_id": "c" * (MAX_LABELLED_LINE_CHARS - len("Client ID: "))},
        None,
    ),
    (
        "json escapes of a whole character pair",
        '{"client_id": "pair-\\ud83d\\ude00-1"}',
        {"client_id": "pair-\U0001F600-1"},
        None,
    ),
    (
        "half a character pair in an entry that is not used",
        json.dumps({"values": [{"key": "client_id", "value": "in-use"},
                               {"key": "client_id", "value": "old-\ud800", "enabled": False}]}),
        {"client_id": "in-use"},
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
    # Once quadratic in the run of spaces (16 s for this one through the form): lines are now
    # bounded and matched with one way to read each run of spaces.
    ("a line of 49,990 spaces", "x\n" + " " * 49_990 + "!", "Nothing in the pasted text"),
    ("a line of 49,990 no-break spaces", "x\n" + "\u00a0" * 49_990 + "!",
     "Nothing in the pasted text"),
    ("many lines of spaces just under the limit",
     "x\n" + (" " * (MAX_LABELLED_LINE_CHARS - 1) + "!\n") * 49, "Nothing in the pasted text"),
    ("a labelled line after 10,000 spaces", "Hello,\n" + " " * 10_000 + "Client ID: far-away",
     "Nothing in the pasted text"),
    ("a labelled line longer than the limit",
     "Client ID: " + "c" * (MAX_LABELLED_LINE_CHARS + 1 - len("Client ID: ")),
     "Nothing in the pasted text"),
    ("half a character pair in a client id",
     '{"client_id": "cid-\\ud800-1234", "client_secret": "s"}',
     "The client ID in the pasted text is not valid Unicode"),
    ("half a character pair at the end of a location id", '{"location_id":"x\\udfff"}',
     "The location ID in the pasted text is not valid Unicode"),
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


def test_a_labelled_line_is_read_only_up_to_the_limit():
    # The limit bounds the matching work per line; lines of an onboarding e-mail are far shorter.
    label = "Client Secret: "
    at_limit = "Hello,\n" + label + "s" * (MAX_LABELLED_LINE_CHARS - len(label))
    assert paste_parse(text=at_limit).client_secret == "s" * (MAX_LABELLED_LINE_CHARS - len(label))
    with pytest.raises(PasteError, match="Nothing in the pasted text"):
        paste_parse(text=at_limit + "s")


def test_indentation_and_bullets_within_the_limit_are_still_read():
    text = "Hello,\n" + " \t\u00a0" * 300 + "\u2022 \t Client ID \t= \u00a0ind-client \u00a0\t"
    assert paste_parse(text=text).client_id == "ind-client"


@pytest.mark.parametrize("field", ["client_id", "client_secret", "username", "password",
                                   "company_id", "location_id"])
def test_half_a_character_pair_is_refused_by_field_name_without_quoting_it(field):
    # json.loads makes "\ud800" a lone surrogate, which UTF-8 cannot encode: storing it failed
    # with a 500. The message names the field, never the value (it may be a secret).
    text = json.dumps({"client_id": "fine-id", field: "TopSecret123-\udbff"})
    with pytest.raises(PasteError) as caught:
        paste_parse(text=text)
    message = str(caught.value)
    assert message.startswith(f"The {labels([field])} in the pasted text is not valid Unicode")
    assert "TopSecret123" not in message


NEW = "/integrations/new/"


def form_post(**overrides: str) -> dict[str, str]:
    data = {"paste": "", "client_id": "", "client_secret": "", "username": "", "password": "",
            "company_id": "", "location_id": "", "response_format": "json", "notes": ""}
    data.update(overrides)
    return data


def test_a_new_package_pasted_with_half_a_character_pair_is_refused_in_words(client, lead):
    client.force_login(lead)
    paste = ('{"client_id": "cid-\\ud800-1234", "client_secret": "TopSecret123", '
             '"username": "api@acme.example", "password": "pw-1"}')
    response = client.post(NEW, form_post(name="Shop Floor", environment="sandbox", paste=paste))
    assert response.status_code == 200
    content = response.content.decode()
    assert "The client ID in the pasted text is not valid Unicode" in content
    assert "TopSecret123" not in content
    assert not Integration.objects.exists() and not PackageVersion.objects.exists()


def test_an_edit_pasted_with_half_a_character_pair_is_refused_and_keeps_the_version(client, lead,
                                                                                     integration):
    client.force_login(lead)
    url = f"/integrations/{integration.uuid}/packages/sandbox/edit/"
    response = client.post(url, form_post(paste='{"location_id":"x\\udfff"}'))
    assert response.status_code == 200
    assert "The location ID in the pasted text is not valid Unicode" in response.content.decode()
    assert PackageVersion.objects.filter(package__integration=integration).count() == 1
