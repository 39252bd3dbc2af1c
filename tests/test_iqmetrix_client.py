"""The iQmetrix token-exchange client against real HTTP on 127.0.0.1: the simulator for the happy
paths and credential errors, small misbehaving servers (tests/fault_servers.py) for every fault.

No Django database and no settings needed; no mocks of `requests`.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from onboarding.iqmetrix import (
    USER_AGENT,
    Outcome,
    TokenResult,
    refresh_access_token,
    request_token,
    token_fingerprint,
)
from onboarding.simulator import DEMO_ACCOUNT, Simulator
from tests import simulator_fixtures
from tests.fault_servers import Exchange, closed_port, fault_server, self_signed_certificate

# The shared fixture, taken explicitly so this file does not depend on conftest.py.
simulator = simulator_fixtures.simulator

SECRET = "cs-7f3a9e-client-secret"
PASSWORD = "pw-51c0de-password"
TOKEN = "at-0ddba11-access-token"
REFRESH = "rt-5ca1ab1e-refresh-token"
GOOD_ANSWER = {"access_token": TOKEN, "expires_in": 43199, "refresh_token": REFRESH}


def exchange(base_url: str, **overrides: object) -> TokenResult:
    kwargs: dict = {
        "base_url": base_url,
        "client_id": "client-1",
        "client_secret": SECRET,
        "username": "api@example.test",
        "password": PASSWORD,
        "environment_label": "Sandbox",
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
    }
    kwargs.update(overrides)
    return request_token(**kwargs)


def assert_plain(result: TokenResult, *secrets: str) -> None:
    """A sentence a lead can read, and nothing secret anywhere a page or log could show."""
    message = result.message
    assert isinstance(message, str) and 20 < len(message) < 400
    assert "\n" not in message and message.endswith(".")
    assert message[0].isupper() or message.startswith("iQmetrix")
    for marker in ("Traceback", "Error(", "<", "{", "urllib3", "HTTPConnection"):
        assert marker not in message
    needles = [SECRET, PASSWORD, TOKEN, REFRESH, *secrets]
    needles += [t for t in (result.access_token, result.refresh_token) if t]
    shown = " ".join([message, repr(result), result.me_error or ""])
    for needle in needles:
        assert needle not in shown


def answer_with(status: int, body: object = b"", **kwargs: object):
    """A handler answering every request the same way."""

    def handler(ex: Exchange) -> None:
        if isinstance(body, dict):
            ex.reply_json(status, body, **kwargs)
        else:
            ex.reply(status, body, **kwargs)

    return handler


# --- credentials, against the simulator -------------------------------------------------------


def demo_exchange(sim: Simulator, **overrides: object) -> TokenResult:
    values = {
        "client_id": DEMO_ACCOUNT.client_id,
        "client_secret": DEMO_ACCOUNT.client_secret,
        "username": DEMO_ACCOUNT.username,
        "password": DEMO_ACCOUNT.password,
    }
    values.update(overrides)
    return exchange(sim.url, **values)


def test_right_credentials_get_a_token_that_expires_from_the_moment_it_was_sent(simulator):
    before = datetime.now(UTC)
    result = demo_exchange(simulator)
    assert result.ok and result.outcome == Outcome.OK and result.http_status == 200
    assert result.access_token and result.refresh_token
    assert before <= result.sent_at <= datetime.now(UTC) and result.sent_at.tzinfo is not None
    assert result.expires_in == 43199
    assert result.expires_at == result.sent_at + timedelta(seconds=43199)
    assert result.retry_after is None and result.me is None and result.duration_ms >= 0
    assert "Sandbox" in result.message
    assert_plain(result, DEMO_ACCOUNT.client_secret, DEMO_ACCOUNT.password)


def test_wrong_password_is_invalid_credentials(simulator):
    result = demo_exchange(simulator, password=PASSWORD)
    assert result.outcome == Outcome.INVALID_CREDENTIALS and result.http_status == 400
    assert "user name or password for Sandbox" in result.message
    assert result.access_token is None and result.expires_at is None
    assert_plain(result, DEMO_ACCOUNT.client_secret)


def test_wrong_client_secret_is_invalid_client(simulator):
    result = demo_exchange(simulator, client_secret=SECRET, environment_label="Production")
    assert result.outcome == Outcome.INVALID_CLIENT and result.http_status == 400
    assert "client ID or client secret for Production" in result.message
    assert_plain(result, DEMO_ACCOUNT.password)


def test_fetch_me_returns_the_tokens_user(simulator):
    result = demo_exchange(simulator, fetch_me=True)
    assert result.ok and result.me_error is None
    assert result.me is not None and result.me["UserName"] == DEMO_ACCOUNT.username
    assert_plain(result, DEMO_ACCOUNT.client_secret, DEMO_ACCOUNT.password)


def test_fetch_me_failure_keeps_the_check_ok_and_says_why():
    def handler(ex: Exchange) -> None:
        if ex.seen.path == "/v1/me":
            assert ex.seen.headers["Authorization"] == f"Bearer {TOKEN}"
            ex.reply(500, "boom", content_type="text/plain")
        else:
            ex.reply_json(200, GOOD_ANSWER)

    with fault_server(handler) as server:
        result = exchange(server.url, fetch_me=True)
    assert result.ok and result.me is None
    assert result.me_error and "HTTP 500" in result.me_error and TOKEN not in result.me_error
    assert_plain(result)


def test_refresh_grant_gets_new_tokens(simulator):
    first = demo_exchange(simulator)
    assert first.refresh_token
    result = refresh_access_token(
        base_url=simulator.url, client_id=DEMO_ACCOUNT.client_id,
        client_secret=DEMO_ACCOUNT.client_secret, refresh_token=first.refresh_token,
        environment_label="Sandbox",
    )
    assert result.ok and result.access_token not in (None, first.access_token)
    assert result.refresh_token not in (None, first.refresh_token)
    assert_plain(result, DEMO_ACCOUNT.client_secret, first.access_token, first.refresh_token)


def test_refresh_grant_with_an_unknown_refresh_token_is_invalid_credentials(simulator):
    result = refresh_access_token(
        base_url=simulator.url, client_id=DEMO_ACCOUNT.client_id,
        client_secret=DEMO_ACCOUNT.client_secret, refresh_token=REFRESH,
        environment_label="Sandbox",
    )
    assert result.outcome == Outcome.INVALID_CREDENTIALS
    assert "refresh token" in result.message
    assert_plain(result, DEMO_ACCOUNT.client_secret)


def test_refresh_grant_is_sent_as_a_form():
    with fault_server(answer_with(200, GOOD_ANSWER)) as server:
        result = refresh_access_token(
            base_url=server.url, client_id="client-1", client_secret=SECRET,
            refresh_token=REFRESH, environment_label="Sandbox",
        )
    assert result.ok
    (seen,) = server.seen
    assert seen.query == "" and parse_qs(seen.body.decode()) == {
        "grant_type": ["refresh_token"], "client_id": ["client-1"],
        "client_secret": [SECRET], "refresh_token": [REFRESH],
    }


# --- what goes over the wire ------------------------------------------------------------------


def test_credentials_are_sent_as_a_form_body_never_in_the_query_string():
    with fault_server(answer_with(200, GOOD_ANSWER)) as server:
        result = exchange(server.url + "/", accept="application/hal+json")
    assert result.ok
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/oauth2/token", "")
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.headers["User-Agent"] == USER_AGENT
    assert seen.headers["Accept"] == "application/hal+json"
    assert parse_qs(seen.body.decode()) == {
        "grant_type": ["password"], "client_id": ["client-1"], "client_secret": [SECRET],
        "username": ["api@example.test"], "password": [PASSWORD],
    }


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_is_not_followed_and_the_target_receives_nothing(status):
    with fault_server(answer_with(200, GOOD_ANSWER)) as target:
        location = {"Location": target.url + "/v1/oauth2/token"}
        with fault_server(answer_with(status, headers=location)) as server:
            result = exchange(server.url)
    assert result.outcome == Outcome.REDIRECTED and result.http_status == status
    assert len(server.seen) == 1 and target.seen == []
    assert_plain(result)


@pytest.mark.parametrize(
    "base_url",
    ["http://accounts.iqmetrix.net", "http://10.0.0.5:8000", "ftp://127.0.0.1",
     "accountsrc.iqmetrix.net", "", "https://user:hunter2@accounts.iqmetrix.net"],
)
def test_a_base_url_that_is_not_https_or_loopback_http_raises_before_any_io(base_url):
    with pytest.raises(ValueError) as caught:
        exchange(base_url)
    assert "hunter2" not in str(caught.value) and SECRET not in str(caught.value)


def test_http_is_allowed_for_localhost():
    with fault_server(answer_with(200, GOOD_ANSWER)) as server:
        assert exchange(f"http://localhost:{server.port}").ok


# --- network faults ---------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out_within_the_read_timeout():
    with fault_server(Exchange.hold) as server:
        started = time.monotonic()
        result = exchange(server.url, read_timeout=0.5)
        elapsed = time.monotonic() - started
    assert result.outcome == Outcome.TIMEOUT and result.http_status is None
    assert "0.5 seconds" in result.message
    assert elapsed < 3 and result.duration_ms < 3000
    assert_plain(result)


def test_a_server_that_dribbles_the_body_forever_is_cut_off():
    def dribble(ex: Exchange) -> None:
        ex.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
        while not ex.stopping.wait(0.05):
            ex.write(b" ")

    with fault_server(dribble) as server:
        started = time.monotonic()
        result = exchange(server.url, read_timeout=0.5)
        elapsed = time.monotonic() - started
    assert result.outcome == Outcome.TIMEOUT and result.http_status == 200
    assert elapsed < 3
    assert_plain(result)


def _in_a_thread(call, *, within: float):
    """`call()`'s result, or a failure once `within` seconds pass: a client that never returns
    must fail the test, not hang the suite."""
    done: list = []
    worker = threading.Thread(target=lambda: done.append(call()), daemon=True)
    worker.start()
    worker.join(within)
    assert done, f"the exchange was still running after {within} s"
    return done[0]


@pytest.mark.parametrize("where", ["status line", "headers"])
def test_a_server_that_dribbles_its_headers_is_cut_off_at_the_request_deadline(where):
    # A byte well inside the read timeout each time: no socket read ever times out, and
    # http.client reads headers until its own limits (100 lines of 64 KiB), which at this pace
    # is days. Only the client's deadline for the whole request (connect + read) stops it.
    def dribble(ex: Exchange) -> None:
        if where == "headers":
            ex.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            ex.write(b"HTTP/1.1 ")
        while not ex.stopping.wait(0.1):
            ex.write(b"a")

    with fault_server(dribble) as server:
        started = time.monotonic()
        result = _in_a_thread(lambda: exchange(server.url, connect_timeout=0.5,
                                               read_timeout=1.0), within=8)
        elapsed = time.monotonic() - started
    assert result.outcome == Outcome.TIMEOUT and result.http_status is None
    assert "within 1.5 seconds" in result.message, result.message
    assert elapsed < 4
    assert_plain(result)


# Each step of these servers comes just inside the read timeout, so no single socket read ever
# times out: only the client's own deadline per request (connect + read) can stop them.
SLOW_CONNECT, SLOW_READ = 0.2, 1.0
SLOW_STEP = 0.9 * SLOW_READ


def slow_answer(ex: Exchange, body: bytes, *, dribble: bool) -> None:
    """Headers after SLOW_STEP, then the body at once after another SLOW_STEP, or (`dribble`)
    a byte every SLOW_STEP, announcing more than is ever sent."""
    length = 100_000 if dribble else len(body)
    if ex.stopping.wait(SLOW_STEP):
        return
    ex.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
             b"Content-Length: %d\r\n\r\n" % length)
    if not dribble:
        if not ex.stopping.wait(SLOW_STEP):
            ex.write(body)
        return
    while not ex.stopping.wait(SLOW_STEP):
        ex.write(b" ")


def slow_exchange(server_url: str) -> tuple[TokenResult, float]:
    started = time.monotonic()
    result = exchange(server_url, connect_timeout=SLOW_CONNECT, read_timeout=SLOW_READ,
                      fetch_me=True)
    return result, time.monotonic() - started


def test_a_slow_token_answer_times_out_at_the_request_deadline_not_after_it():
    # Headers just inside the read timeout, then the body just inside it again: every read is
    # in time, but the request as a whole is not. Before the fix the body read got a fresh
    # read timeout after the headers, the token came through, and /v1/me did the same again.
    def handler(ex: Exchange) -> None:
        if ex.seen.path == "/v1/me":
            slow_answer(ex, b"", dribble=True)
        else:
            slow_answer(ex, json.dumps(GOOD_ANSWER).encode(), dribble=False)

    with fault_server(handler) as server:
        result, elapsed = slow_exchange(server.url)
    # The documented bound of a whole check, with a wide margin for a slow machine.
    assert elapsed < 2 * (SLOW_CONNECT + SLOW_READ) + 1
    assert result.outcome == Outcome.TIMEOUT and result.http_status == 200
    assert "did not finish within 1.2 seconds" in result.message
    assert [seen.path for seen in server.seen] == ["/v1/oauth2/token"]
    assert_plain(result)


def test_a_slow_me_answer_is_cut_off_at_its_deadline_and_the_token_still_counts():
    def handler(ex: Exchange) -> None:
        if ex.seen.path == "/v1/me":
            slow_answer(ex, b"", dribble=True)
        else:
            ex.reply_json(200, GOOD_ANSWER)

    with fault_server(handler) as server:
        result, elapsed = slow_exchange(server.url)
    # One request's budget (connect + read), with a wide margin for a slow machine.
    assert elapsed < (SLOW_CONNECT + SLOW_READ) + 1
    assert result.ok and result.me is None
    assert result.me_error and "/v1/me could not be read" in result.me_error
    assert "did not finish within 1.2 seconds" in result.me_error
    assert_plain(result)


def test_a_request_ends_at_its_deadline_not_at_the_next_receive():
    # Headers at 0.9 x read, the body 0.9 x read later: the deadline (connect + read) falls
    # between the two, and the wait for the body must stop there, not when the body comes.
    connect, read = 0.2, 2.0

    def handler(ex: Exchange) -> None:
        if ex.stopping.wait(0.9 * read):
            return
        body = json.dumps(GOOD_ANSWER).encode()
        ex.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
        if not ex.stopping.wait(0.9 * read):
            ex.write(body)

    with fault_server(handler) as server:
        started = time.monotonic()
        result = exchange(server.url, connect_timeout=connect, read_timeout=read)
        elapsed = time.monotonic() - started
    # Due at 2.2 s; the body would come at 3.6 s. The margin is for a slow machine.
    assert elapsed < (connect + read) + 0.7
    assert result.outcome == Outcome.TIMEOUT and result.http_status == 200
    assert "did not finish within 2.2 seconds" in result.message
    assert_plain(result)


def test_connection_refused_is_unreachable():
    result = exchange(f"http://127.0.0.1:{closed_port()}")
    assert result.outcome == Outcome.UNREACHABLE and result.http_status is None
    assert "refused the connection" in result.message
    assert_plain(result)


def test_a_host_name_that_does_not_resolve_is_unreachable():
    result = exchange("https://nonexistent.invalid")
    assert result.outcome == Outcome.UNREACHABLE
    assert "could not resolve the host name nonexistent.invalid" in result.message.lower()
    assert_plain(result)


def test_a_host_name_lookup_that_hangs_is_given_up_within_the_connect_timeout(monkeypatch):
    """The resolver honours no timeout of ours (a DNS server that never answers holds it for
    its own retries): the lookup is given up on, not waited for."""
    release, finished = threading.Event(), threading.Event()
    resolve = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host != "hanging-dns.example.test":
            return resolve(host, *args, **kwargs)
        try:
            release.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        finally:
            finished.set()

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        result = exchange("https://hanging-dns.example.test", connect_timeout=0.3)
        still_hanging = not finished.is_set()
    finally:
        release.set()
    assert still_hanging  # the answer came while the lookup hung: it was not waited for
    assert result.outcome == Outcome.UNREACHABLE
    assert "could not resolve the host name hanging-dns.example.test" in result.message.lower()
    assert_plain(result)


def test_each_address_of_a_host_name_is_tried_in_turn(monkeypatch):
    resolve = socket.getaddrinfo

    def two_addresses(host, port, *args, **kwargs):
        if host != "localhost":
            return resolve(host, port, *args, **kwargs)
        # Nothing listens on 127.0.0.2: refused there, answered on the second address.
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))
                for ip in ("127.0.0.2", "127.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    with fault_server(answer_with(200, GOOD_ANSWER)) as server:
        result = exchange(f"http://localhost:{server.port}")
        assert result.ok, result.message
        # The name stays the Host header; only the socket went to the address.
        assert [seen.headers.get("Host") for seen in server.seen] == [f"localhost:{server.port}"]


def test_an_untrusted_certificate_is_a_tls_error_and_nothing_is_sent(tmp_path: Path):
    certificate = self_signed_certificate(tmp_path)
    with fault_server(answer_with(200, GOOD_ANSWER), tls=certificate) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.TLS_ERROR
    assert "certificate could not be verified" in result.message
    assert server.seen == []
    assert_plain(result)


# --- answers that are not a token -------------------------------------------------------------


def test_a_web_page_with_200_is_malformed():
    page = f"<html><body>Sign in {TOKEN}</body></html>"
    with fault_server(answer_with(200, page, content_type="text/html")) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE and result.http_status == 200
    assert "JSON" in result.message
    assert_plain(result)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"expires_in": 43199, "refresh_token": REFRESH}, "without an access token"),
        ({"access_token": "", "expires_in": 43199}, "without an access token"),
        ({"access_token": TOKEN}, "expires_in is missing"),
        ({"access_token": TOKEN, "expires_in": -5}, "not positive"),
        ({"access_token": TOKEN, "expires_in": 0}, "not positive"),
        ({"access_token": TOKEN, "expires_in": "soon"}, "not a whole number"),
        ({"access_token": TOKEN, "expires_in": 12.5}, "not a whole number"),
        ({"access_token": TOKEN, "expires_in": True}, "not a number"),
        ({"access_token": TOKEN, "expires_in": 10**9}, "more than 30 days"),
    ],
)
def test_a_token_answer_with_a_bad_field_is_malformed_and_says_what(answer, words):
    with fault_server(answer_with(200, answer)) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE
    assert words in result.message and result.access_token is None
    assert_plain(result)


@pytest.mark.parametrize("value", ["43199", 43199.0])
def test_expires_in_as_a_numeric_string_is_accepted(value):
    with fault_server(answer_with(200, {"access_token": TOKEN, "expires_in": value})) as server:
        result = exchange(server.url)
    assert result.ok and result.expires_in == 43199 and result.refresh_token is None
    assert result.expires_at == result.sent_at + timedelta(seconds=43199)


def test_an_answer_over_one_mebibyte_is_malformed():
    huge = b'{"access_token": "' + b"a" * 1_100_000 + b'", "expires_in": 43199}'
    with fault_server(answer_with(200, huge)) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE
    assert "answer too large" in result.message
    assert_plain(result)


def test_a_chunked_answer_is_read():
    body = json.dumps(GOOD_ANSWER).encode()

    def chunked(ex: Exchange) -> None:
        ex.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 16):
            part = body[start:start + 16]
            ex.write(b"%x\r\n%s\r\n" % (len(part), part))
        ex.write(b"0\r\n\r\n")

    with fault_server(chunked) as server:
        assert exchange(server.url).ok


def test_a_gzip_bomb_is_stopped_at_the_size_limit():
    bomb = gzip.compress(b"{" + b" " * 20_000_000)
    with fault_server(answer_with(200, bomb, headers={"Content-Encoding": "gzip"})) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE and "answer too large" in result.message


def test_an_answer_cut_off_midway_is_malformed():
    def cut(ex: Exchange) -> None:
        ex.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + TOKEN.encode())

    with fault_server(cut) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.MALFORMED_RESPONSE and "cut off" in result.message
    assert_plain(result)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "outcome"),
    [
        (401, '{"error": "invalid_client"}', "application/json", Outcome.INVALID_CLIENT),
        (400, "error=invalid_grant", "text/plain", Outcome.INVALID_CREDENTIALS),
        (400, '{"error": "unsupported_grant_type"}', "application/json",
         Outcome.UNSUPPORTED_GRANT_TYPE),
        (400, '{"error": "invalid_request"}', "application/json", Outcome.UNEXPECTED_STATUS),
        (401, "", "text/plain", Outcome.UNEXPECTED_STATUS),
        (404, "Not found", "text/plain", Outcome.UNEXPECTED_STATUS),
    ],
)
def test_oauth_errors_are_read_leniently(status, body, content_type, outcome):
    with fault_server(answer_with(status, body, content_type=content_type)) as server:
        result = exchange(server.url)
    assert result.outcome == outcome and result.http_status == status
    assert_plain(result)


def test_429_is_rate_limited_with_retry_after_seconds():
    headers = {"Retry-After": "30"}
    with fault_server(answer_with(429, "rate limit exceeded", content_type="text/plain",
                                  headers=headers)) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.RATE_LIMITED and result.retry_after == 30
    assert result.message == "iQmetrix is rate-limiting these credentials; try again in 30 seconds."
    assert_plain(result)


def test_429_with_an_http_date_or_no_retry_after():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    with fault_server(answer_with(429, headers={"Retry-After": when})) as server:
        dated = exchange(server.url)
    assert dated.outcome == Outcome.RATE_LIMITED and 85 <= (dated.retry_after or 0) <= 91
    with fault_server(answer_with(429)) as server:
        bare = exchange(server.url)
    assert bare.retry_after is None and "try again in a minute" in bare.message


def test_500_is_a_server_error():
    with fault_server(answer_with(500, "<html>stack trace</html>", content_type="text/html")) as s:
        result = exchange(s.url)
    assert result.outcome == Outcome.SERVER_ERROR and result.http_status == 500
    assert result.retry_after is None
    assert_plain(result)


def test_503_is_a_server_error_that_mentions_retry_after():
    with fault_server(answer_with(503, headers={"Retry-After": "120"})) as server:
        result = exchange(server.url)
    assert result.outcome == Outcome.SERVER_ERROR and result.retry_after == 120
    assert "2 minutes" in result.message
    assert_plain(result)


def test_token_fingerprint_is_short_stable_and_not_the_token():
    fingerprint = token_fingerprint(TOKEN)
    assert fingerprint == token_fingerprint(TOKEN) != token_fingerprint(REFRESH)
    assert fingerprint.startswith("sha256:") and len(fingerprint) == len("sha256:") + 12
    assert TOKEN not in fingerprint


def test_every_outcome_has_a_label():
    assert {o.value for o in Outcome} >= {"ok", "timeout", "tls_error", "redirected"}
    assert all(o.label for o in Outcome)



def test_the_suite_resolves_loopback_names_only():
    # The guard in tests/conftest.py: a check that forgot the simulator fails like an offline
    # machine, at once, instead of calling iQmetrix. A numeric address resolves without DNS, so
    # this fails without the guard on any machine.
    for host in ("10.0.0.5", "accountsrc.iqmetrix.net"):
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(host, 443)
    assert socket.getaddrinfo("127.0.0.1", 80) and socket.getaddrinfo("localhost", 80)
    result = exchange("https://accountsrc.iqmetrix.net")
    assert result.outcome == Outcome.UNREACHABLE and "Could not resolve" in result.message
