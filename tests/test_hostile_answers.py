"""Answers of a hostile or broken accounts host that the database or `requests` cannot take as
they come: JSON numbers that are not numbers (NaN, Infinity, 1e400), text a JSON column refuses
(NUL, a lone surrogate), and tokens outside printable ASCII. Each is an outcome in plain words,
recorded and audited like any other check; none is a server error, a lost record, or a message
quoting a character of a token.

Real HTTP to the small servers of tests/fault_servers.py; no mocks of `requests`.
"""

from __future__ import annotations

from contextlib import ExitStack
from io import StringIO

import pytest
from django.core.management import call_command

from onboarding.iqmetrix import Outcome, TokenResult, request_token
from onboarding.models import AuditEvent, ConnectivityCheck, OnboardingPackage
from onboarding.services import checks as checks_service
from onboarding.services.audit import audit_verify
from onboarding.services.checks import CheckError, check_refresh, check_run
from tests.fault_servers import fault_server, token_then_me

TOKEN = "at-0ddba11-access-token"
GOOD_TOKEN = {"access_token": TOKEN, "expires_in": 3600, "refresh_token": "rt-5ca1ab1e"}
CANNOT_KEEP = "The token works, but /v1/me did not answer with a JSON object Aisle Keys can keep."
NOT_ASCII = "holding characters no OAuth token may have (only printable ASCII is allowed)"

# /v1/me answers Python's json reads but a JSON column refuses: SQLite's JSON_VALID fails on
# NaN and Infinity (1e400 reads as inf); PostgreSQL's jsonb also refuses NUL and lone surrogates.
UNKEEPABLE_ME = [
    pytest.param('{"Id": NaN}', id="nan"),
    pytest.param('{"Id": Infinity}', id="infinity"),
    pytest.param('{"Id": -Infinity}', id="minus-infinity"),
    pytest.param('{"Id": 1e400}', id="overflowing-number"),
    pytest.param('{"Roles": [{"Scope": [1, NaN]}]}', id="nested-nan"),
    pytest.param('{"UserName": "api\\u0000user"}', id="nul-in-a-value"),
    pytest.param('{"User\\u0000Name": "api"}', id="nul-in-a-key"),
    pytest.param('{"UserName": "\\ud800"}', id="lone-surrogate"),
]

# Tokens that are not 1*VSCHAR (RFC 6749 A.12): the euro sign is what made http.client's
# "'latin-1' codec can't encode character '\u20ac' in position 10" reach the page.
BAD_TOKENS = [
    pytest.param("tok\u20acsecretTAIL", id="euro-sign"),
    pytest.param("tok\u00e9secretTAIL", id="latin-1-letter"),
    pytest.param("tok\nX-Injected: secretTAIL", id="line-break"),
    pytest.param("tok\x00secretTAIL", id="nul"),
    pytest.param("tok\x7fsecretTAIL", id="delete"),
]


def exchange(base_url: str, **overrides: object) -> TokenResult:
    kwargs: dict = {
        "base_url": base_url, "client_id": "client-1", "client_secret": "cs-7f3a9e",
        "username": "api@example.test", "password": "pw-51c0de", "environment_label": "Sandbox",
        "connect_timeout": 2.0, "read_timeout": 2.0,
    }
    kwargs.update(overrides)
    return request_token(**kwargs)


def assert_names_no_part_of(text: str, token: str) -> None:
    """No character a token has and a plain token lacks, no tail of it, no codec error."""
    for needle in ("secretTAIL", "codec", "position", "ordinal", "\\u", "\\x"):
        assert needle not in text
    assert all(ch.isprintable() and ord(ch) < 0x7F for ch in text)
    assert token not in text


@pytest.fixture
def hostile_sandbox(settings):
    """`hostile_sandbox(handler)`: Sandbox's accounts host is now a fault server answering with
    `handler` (the latest one started), with /v1/me asked for; all stop after the test."""
    settings.IQMETRIX_FETCH_ME = True
    with ExitStack() as servers:

        def serve(handler):
            server = servers.enter_context(fault_server(handler))
            settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                               "sandbox": server.url}
            return server

        yield serve


# --- the client -------------------------------------------------------------------------------


@pytest.mark.parametrize("me", UNKEEPABLE_ME)
def test_a_me_answer_no_json_column_can_keep_is_dropped_and_the_token_still_counts(me):
    with fault_server(token_then_me(GOOD_TOKEN, me)) as server:
        result = exchange(server.url, fetch_me=True)
    assert result.ok and result.access_token == TOKEN
    assert result.me is None and result.me_error == CANNOT_KEEP


@pytest.mark.parametrize("answer", [
    pytest.param('{"access_token": "at-1", "expires_in": 3600, "scope": NaN}', id="nan"),
    pytest.param('{"access_token": "at-1", "expires_in": 3600, "x": -Infinity}', id="infinity"),
    pytest.param('{"access_token": "at-1", "expires_in": 3600, "x": [1e999]}', id="1e999"),
])
def test_a_token_answer_holding_nan_or_infinity_is_malformed(answer):
    with fault_server(token_then_me(answer)) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE and result.http_status == 200
    assert "not with a JSON object" in result.message
    assert result.access_token is None


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_an_access_token_outside_printable_ascii_is_malformed_and_never_sent(token):
    answer = {"access_token": token, "expires_in": 3600, "refresh_token": "rt-1"}
    with fault_server(token_then_me(answer)) as server:
        result = exchange(server.url, fetch_me=True)
    assert result.outcome == Outcome.MALFORMED_RESPONSE and result.http_status == 200
    assert f"with an access token {NOT_ASCII}" in result.message
    assert result.access_token is None and result.refresh_token is None and result.me is None
    assert [seen.path for seen in server.seen] == ["/v1/oauth2/token"]  # no /v1/me with it
    assert_names_no_part_of(result.message, token)


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_refresh_token_outside_printable_ascii_is_malformed(token):
    answer = {"access_token": TOKEN, "expires_in": 3600, "refresh_token": token}
    with fault_server(token_then_me(answer)) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE
    assert f"with a refresh token {NOT_ASCII}" in result.message
    assert result.access_token is None and result.refresh_token is None
    assert_names_no_part_of(result.message, token)


def test_a_header_value_http_cannot_carry_is_an_outcome_that_quotes_none_of_it():
    # http.client raises UnicodeEncodeError (a ValueError, not a requests error) for a header
    # value outside Latin-1, and its text quotes the character: it must become an outcome.
    with fault_server(token_then_me(GOOD_TOKEN)) as server:
        result = exchange(server.url, accept="application/json; profile=\u20acsecretTAIL")
    assert result.outcome == Outcome.UNREACHABLE and result.access_token is None
    assert "could not send its request" in result.message
    assert server.seen == []
    assert_names_no_part_of(result.message, "\u20acsecretTAIL")


# --- recorded checks --------------------------------------------------------------------------


@pytest.mark.parametrize("me", UNKEEPABLE_ME)
def test_a_me_answer_no_json_column_can_keep_still_records_the_pass_and_its_audit_event(
        hostile_sandbox, sandbox_version, lead, me):
    hostile_sandbox(token_then_me(GOOD_TOKEN, me))
    check = check_run(package=sandbox_version.package, actor=lead)
    stored = ConnectivityCheck.objects.get(pk=check.pk)
    assert stored.outcome == Outcome.OK and stored.me is None
    assert stored.message.endswith(CANNOT_KEEP)
    assert stored.access_token == TOKEN
    event = AuditEvent.objects.get(action="check")
    assert event.details["outcome"] == "ok" and event.details["check"] == str(check.uuid)
    assert audit_verify().ok


def test_the_dashboard_check_of_a_nan_me_answer_is_no_server_error(hostile_sandbox, client,
                                                                   sandbox_version, lead):
    hostile_sandbox(token_then_me(GOOD_TOKEN, '{"Id": NaN}'))
    client.raise_request_exception = False
    client.force_login(lead)
    response = client.post(f"/packages/{sandbox_version.package.uuid}/check/")
    assert response.status_code == 302
    assert ConnectivityCheck.objects.get().me is None
    assert AuditEvent.objects.filter(action="check").count() == 1


def test_check_connectivity_records_a_nan_me_answer_and_passes(hostile_sandbox, sandbox_version):
    hostile_sandbox(token_then_me(GOOD_TOKEN, '{"Id": NaN}'))
    out = StringIO()
    call_command("check_connectivity", "Acme POS", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith("Acme POS · Sandbox: ok")
    assert ConnectivityCheck.objects.get().outcome == Outcome.OK
    assert AuditEvent.objects.filter(action="check").count() == 1


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_token_outside_printable_ascii_is_recorded_as_malformed_without_a_character_of_it(
        hostile_sandbox, sandbox_version, lead, token):
    server = hostile_sandbox(token_then_me({"access_token": token, "expires_in": 3600}))
    check = check_run(package=sandbox_version.package, actor=lead)
    stored = ConnectivityCheck.objects.get(pk=check.pk)
    assert stored.outcome == Outcome.MALFORMED_RESPONSE
    assert stored.access_token is None and stored.token_fingerprint == ""
    assert_names_no_part_of(stored.message, token)
    event = AuditEvent.objects.get(action="check")
    assert event.details["outcome"] == "malformed_response"
    assert_names_no_part_of(str(event.details) + event.target, token)
    assert [seen.path for seen in server.seen] == ["/v1/oauth2/token"]


def test_only_a_bad_accounts_url_becomes_a_check_error(monkeypatch, settings, sandbox_version):
    # Any other ValueError from the exchange (http.client's names the character it could not
    # encode and where) must not be shown as the reason a check could not run.
    leak = UnicodeEncodeError("latin-1", "Bearer tok\u20acsecretTAIL", 10, 11,
                              "ordinal not in range(256)")

    def broken_client(**_kwargs):
        raise leak

    monkeypatch.setattr(checks_service, "request_token", broken_client)
    with pytest.raises(UnicodeEncodeError):
        check_run(package=sandbox_version.package)
    package = OnboardingPackage.objects.get(pk=sandbox_version.package.pk)
    assert package.check_busy_until is None  # the claim is released for the next click
    monkeypatch.undo()
    settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS,
                                       "sandbox": "ftp://accounts.example.test"}
    with pytest.raises(CheckError, match="must use https://"):
        check_run(package=sandbox_version.package)
    assert ConnectivityCheck.objects.count() == 0


def test_a_refresh_answered_with_a_token_outside_printable_ascii_is_malformed(
        hostile_sandbox, sandbox_version, lead, monkeypatch):
    monkeypatch.setattr(checks_service, "DEDUPE_SECONDS", 0.0)
    first = {"access_token": TOKEN, "expires_in": 3600, "refresh_token": "rt-1"}
    hostile_sandbox(token_then_me(first))
    assert check_run(package=sandbox_version.package, actor=lead).outcome == Outcome.OK
    hostile_sandbox(token_then_me({"access_token": "at-\u20acsecretTAIL", "expires_in": 3600}))
    refreshed = check_refresh(package=sandbox_version.package, actor=lead)
    assert refreshed.outcome == Outcome.MALFORMED_RESPONSE
    assert_names_no_part_of(refreshed.message, "at-\u20acsecretTAIL")
