"""Client for the token exchange of the iQmetrix accounts host (OAuth2 password and refresh grants).

Plain values in, plain results out: this module knows no models and reads no settings, so the
check service decides which base URL and timeouts apply and what gets stored. Every network fault
becomes a `TokenResult` with an `Outcome` and one sentence a lead understands; only a bad base URL
(a configuration error) raises, as `AccountsURLError`. Secrets, tokens and response bodies never
reach a message, an exception or the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

import requests
from django.db.models import TextChoices
from urllib3.util import Timeout

from onboarding import __version__
from onboarding.iqmetrix_wire import (
    BODY_READ_ERRORS,
    AccountsURLError,
    BodyDeadline,
    DeadlineAdapter,
    checked_base_url,
    in_words,
    is_timeout,
    is_token_text,
    json_object,
    network_error_kind,
    oauth_error_code,
    parse_expires_in,
    parse_retry_after,
    read_capped,
    request_deadline,
    storable_json,
)

__all__ = [
    "USER_AGENT",
    "AccountsURLError",
    "Outcome",
    "TokenResult",
    "refresh_access_token",
    "request_token",
    "token_fingerprint",
]

logger = logging.getLogger(__name__)

USER_AGENT = f"AisleKeys/{__version__}"
TOKEN_PATH = "/v1/oauth2/token"  # noqa: S105 -- a path, not a password
ME_PATH = "/v1/me"


class Outcome(TextChoices):
    OK = "ok", "OK"
    INVALID_CREDENTIALS = "invalid_credentials", "Invalid user name or password"
    INVALID_CLIENT = "invalid_client", "Invalid client ID or secret"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type", "Token request format rejected"
    RATE_LIMITED = "rate_limited", "Rate limited"
    SERVER_ERROR = "server_error", "iQmetrix server error"
    TIMEOUT = "timeout", "Timed out"
    UNREACHABLE = "unreachable", "Host unreachable"
    TLS_ERROR = "tls_error", "TLS certificate problem"
    REDIRECTED = "redirected", "Redirected"
    MALFORMED_RESPONSE = "malformed_response", "Malformed response"
    UNEXPECTED_STATUS = "unexpected_status", "Unexpected HTTP status"


@dataclass(frozen=True)
class TokenResult:
    outcome: Outcome
    message: str
    http_status: int | None
    sent_at: datetime
    duration_ms: int
    expires_in: int | None
    expires_at: datetime | None
    retry_after: int | None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    me: dict | None = None
    me_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


def token_fingerprint(token: str) -> str:
    """A short, stable label for a token that can be stored and shown; never the token itself."""
    return "sha256:" + sha256(token.encode("utf-8")).hexdigest()[:12]


def request_token(
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    username: str,
    password: str,
    environment_label: str,
    accept: str = "application/json",
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    fetch_me: bool = False,
) -> TokenResult:
    """Password grant; with `fetch_me`, also ask `/v1/me` who the new token belongs to."""
    form = {
        "grant_type": "password",
        "client_id": client_id,
        "client_secret": client_secret,
        "username": username,
        "password": password,
    }
    return _exchange(
        base=checked_base_url(base_url), form=form, env=environment_label, accept=accept,
        timeouts=(connect_timeout, read_timeout), fetch_me=fetch_me,
    )


def refresh_access_token(
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    environment_label: str,
    accept: str = "application/json",
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
) -> TokenResult:
    """Refresh grant; iQmetrix revokes the access token this one replaces."""
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    return _exchange(
        base=checked_base_url(base_url), form=form, env=environment_label, accept=accept,
        timeouts=(connect_timeout, read_timeout), fetch_me=False,
    )


# --- the exchange -----------------------------------------------------------------------------


class _Fault(Exception):
    """Carries an outcome and its sentence out of the helpers; never leaves this module."""

    def __init__(self, outcome: Outcome, message: str, status: int | None = None) -> None:
        super().__init__(outcome)
        self.outcome, self.message, self.status = outcome, message, status


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes | None  # None: larger than MAX_BODY_BYTES


@dataclass
class _Target:
    env: str
    host: str
    timeouts: tuple[float, float]

    @property
    def budget(self) -> float:
        """The most one request may take, connect, headers and body together: connect + read.
        A check makes at most two (token, /v1/me), so it stays within 2 x (connect + read), the
        bound the claim span and the gunicorn timeout are sized for."""
        return self.timeouts[0] + self.timeouts[1]


def _exchange(
    *, base: str, form: dict[str, str], env: str, accept: str,
    timeouts: tuple[float, float], fetch_me: bool,
) -> TokenResult:
    target = _Target(env=env, host=urlsplit(base).hostname or "", timeouts=timeouts)
    headers = {"Accept": accept, "User-Agent": USER_AGENT}
    me: dict | None = None
    me_error: str | None = None
    with requests.Session() as session:
        # No proxies, .netrc or CA bundle from the environment: credentials go exactly where the
        # settings say and are checked against the bundled CA list.
        session.trust_env = False
        for scheme in ("http://", "https://"):
            session.mount(scheme, DeadlineAdapter())  # answers end by each request's deadline
        sent_at = datetime.now(UTC)
        started = time.monotonic()
        try:
            answer = _send(session, "POST", base + TOKEN_PATH, target, budget=target.budget,
                           headers=headers, data=form)
            parsed = _interpret(answer, grant=form["grant_type"], env=env, sent_at=sent_at)
        except _Fault as fault:
            parsed = _Parsed(fault.outcome, fault.message, fault.status)
        duration_ms = int((time.monotonic() - started) * 1000)
        if parsed.outcome == Outcome.OK and fetch_me and parsed.access_token:
            me, me_error = _fetch_me(session, base, target, accept, parsed.access_token,
                                     check_deadline=started + 2 * target.budget)
    logger.info(
        "iqmetrix token exchange: grant=%s outcome=%s status=%s duration_ms=%d",
        form["grant_type"], parsed.outcome.value, parsed.status, duration_ms,
    )
    expires_at = None
    if parsed.outcome == Outcome.OK and parsed.expires_in is not None:
        expires_at = sent_at + timedelta(seconds=parsed.expires_in)
    return TokenResult(
        outcome=parsed.outcome, message=parsed.message, http_status=parsed.status,
        sent_at=sent_at, duration_ms=duration_ms, expires_in=parsed.expires_in,
        expires_at=expires_at, retry_after=parsed.retry_after,
        access_token=parsed.access_token, refresh_token=parsed.refresh_token,
        me=me, me_error=me_error,
    )


def _send(
    session: requests.Session, method: str, url: str, target: _Target, *, budget: float,
    **kwargs: Any,
) -> _Answer:
    """One request that ends, answered or not, within `budget` seconds from now."""
    deadline = time.monotonic() + budget
    connect, read = min(target.timeouts[0], budget), min(target.timeouts[1], budget)
    # `total` makes urllib3 shorten the wait for the headers by the time the connect took, so
    # connect + headers fit the budget; the body read below gets whatever is left of it.
    timeout = Timeout(connect=connect, read=read, total=budget)
    with request_deadline(deadline):
        return _send_by(session, method, url, target, deadline=deadline, budget=budget,
                        timeout=timeout, limits=(connect, read), **kwargs)


def _send_by(
    session: requests.Session, method: str, url: str, target: _Target, *, deadline: float,
    budget: float, timeout: Timeout, limits: tuple[float, float], **kwargs: Any,
) -> _Answer:
    read = limits[1]
    try:
        response = session.request(
            method, url, timeout=timeout, verify=True, allow_redirects=False,
            stream=True, **kwargs,
        )
    except requests.RequestException as exc:
        if (not isinstance(exc, requests.ConnectTimeout) and is_timeout(exc)
                and time.monotonic() >= deadline - 0.01):
            # Cut off by the deadline, not by one silent wait: the status line or headers came
            # too slowly (a byte at a time), each receive inside the read timeout.
            raise _Fault(
                Outcome.TIMEOUT,
                f"The iQmetrix accounts host for {target.env} ({target.host}) did not finish "
                f"answering within {_budget_words(budget)}. Try again later.",
            ) from None
        raise _network_fault(exc, target, limits=limits) from None
    except ValueError:
        # Not a network fault: a value that cannot go into an HTTP request, e.g. a header value
        # http.client cannot encode as Latin-1 (UnicodeEncodeError). Its text names the character
        # and its position, and the value may be a token, so none of it is passed on.
        raise _Fault(
            Outcome.UNREACHABLE,
            f"Aisle Keys could not send its request to the iQmetrix accounts host for "
            f"{target.env} ({target.host}): a value in it cannot be sent over HTTP. Report this "
            "to the Aisle Keys maintainers.",
        ) from None
    with response:
        if 300 <= response.status_code < 400:
            # Never read or follow: the Location could be anyone's server.
            return _Answer(response.status_code, response.headers, b"")
        try:
            body = read_capped(response, deadline=deadline, read_timeout=read)
        except BodyDeadline:
            raise _Fault(
                Outcome.TIMEOUT,
                f"The iQmetrix accounts host for {target.env} ({target.host}) started answering "
                f"but did not finish within {_budget_words(budget)}. Try again later.",
                response.status_code,
            ) from None
        except BODY_READ_ERRORS as exc:
            if is_timeout(exc):
                raise _Fault(
                    Outcome.TIMEOUT,
                    f"The iQmetrix accounts host for {target.env} ({target.host}) stopped "
                    f"answering for {in_words(read)}. Try again later.",
                    response.status_code,
                ) from None
            raise _Fault(
                Outcome.MALFORMED_RESPONSE,
                f"The answer of the iQmetrix accounts host for {target.env} was cut off or "
                "garbled. Try again; if it keeps happening, contact iQmetrix support.",
                response.status_code,
            ) from None
        return _Answer(response.status_code, response.headers, body)


def _budget_words(budget: float) -> str:
    # Rounded: a shortened /v1/me budget is not a round number of seconds.
    return in_words(max(round(budget, 1), 0.1))


def _network_fault(
    exc: requests.RequestException, target: _Target, *, limits: tuple[float, float]
) -> _Fault:
    env, host = target.env, target.host
    kind = network_error_kind(exc)
    if kind in ("connect_timeout", "read_timeout"):
        limit = limits[0] if kind == "connect_timeout" else limits[1]
        return _Fault(
            Outcome.TIMEOUT,
            f"The iQmetrix accounts host for {env} ({host}) did not answer within "
            f"{in_words(limit)}. Try again later; if it keeps happening, check the network path "
            "to iQmetrix.",
        )
    if kind in ("tls_verify", "tls"):
        failure = (
            f"The iQmetrix accounts host for {env} ({host}) was not trusted: its certificate "
            "could not be verified" if kind == "tls_verify" else
            f"A secure connection to the iQmetrix accounts host for {env} ({host}) could not be "
            "established"
        )
        return _Fault(
            Outcome.TLS_ERROR,
            f"{failure}, so nothing was sent. Check the accounts URL setting; a proxy or firewall "
            "may be intercepting the connection.",
        )
    if kind == "dns":
        message = (f"Could not resolve the host name {host} of the iQmetrix accounts host for "
                   f"{env}. Check the accounts URL setting and this server's DNS.")
    elif kind == "refused":
        message = (f"The iQmetrix accounts host for {env} ({host}) refused the connection. Check "
                   "the accounts URL setting; if it is right, the service may be down.")
    else:
        message = (f"Could not connect to the iQmetrix accounts host for {env} ({host}). Check "
                   "this server's network connection and the accounts URL setting.")
    return _Fault(Outcome.UNREACHABLE, message)


# --- reading the answer -----------------------------------------------------------------------


@dataclass
class _Parsed:
    outcome: Outcome
    message: str
    status: int | None
    expires_in: int | None = None
    retry_after: int | None = None
    access_token: str | None = None
    refresh_token: str | None = None


def _interpret(answer: _Answer, *, grant: str, env: str, sent_at: datetime) -> _Parsed:
    status = answer.status
    if status == 200:
        return _token_answer(answer, env=env)
    if 300 <= status < 400:
        return _Parsed(
            Outcome.REDIRECTED,
            f"The iQmetrix accounts host for {env} answered with a redirect (HTTP {status}), so "
            "the credentials were not sent on. Check the accounts URL setting.",
            status,
        )
    if status in (400, 401):
        return _oauth_error(answer, grant=grant, env=env)
    if status == 429:
        wait = parse_retry_after(answer.headers.get("Retry-After"), now=sent_at)
        when = f"in {in_words(wait)}" if wait is not None else "in a minute"
        return _Parsed(
            Outcome.RATE_LIMITED,
            f"iQmetrix is rate-limiting these credentials; try again {when}.",
            status, retry_after=wait,
        )
    if status in (500, 502, 503, 504):
        wait = parse_retry_after(answer.headers.get("Retry-After"), now=sent_at)
        if status == 503 and wait is not None:
            message = (f"The iQmetrix accounts service for {env} is temporarily unavailable "
                       f"(HTTP 503); it asks to try again in {in_words(wait)}.")
        else:
            message = (f"The iQmetrix accounts service for {env} had a server error "
                       f"(HTTP {status}). Try again in a few minutes; if it keeps failing, "
                       "contact iQmetrix support.")
        return _Parsed(Outcome.SERVER_ERROR, message, status,
                       retry_after=wait if status == 503 else None)
    return _Parsed(
        Outcome.UNEXPECTED_STATUS,
        f"The iQmetrix accounts host for {env} answered with an unexpected HTTP {status}. Check "
        "the accounts URL setting; if it is right, contact iQmetrix support.",
        status,
    )


def _token_answer(answer: _Answer, *, env: str) -> _Parsed:
    def malformed(what: str) -> _Parsed:
        return _Parsed(
            Outcome.MALFORMED_RESPONSE,
            f"iQmetrix answered the token request for {env} with HTTP 200 but {what}. Try again; "
            "if it keeps happening, contact iQmetrix support.",
            200,
        )

    if answer.body is None:
        return malformed("with an answer too large to accept (over 1 MiB)")
    data = json_object(answer.body)
    if data is None:
        return malformed("not with a JSON object (perhaps a web page)")
    access_token = data.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        return malformed("without an access token")
    refresh_token = data.get("refresh_token")
    # One rule for both tokens, and a sentence that quotes neither: a token is sent back (in the
    # Authorization header, in a refresh form) exactly as it came, and only printable ASCII can be.
    for which, token in (("an access", access_token), ("a refresh", refresh_token)):
        if isinstance(token, str) and token and not is_token_text(token):
            return malformed(f"with {which} token holding characters no OAuth token may have "
                             "(only printable ASCII is allowed)")
    if "expires_in" not in data:
        return malformed("without an expiry (expires_in is missing)")
    expires_in, problem = parse_expires_in(data["expires_in"])
    if expires_in is None:
        return malformed(f"with an unusable expiry (expires_in {problem})")
    return _Parsed(
        Outcome.OK,
        f"iQmetrix issued a token for {env}; it expires in {in_words(expires_in)}.",
        200, expires_in=expires_in, access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
    )


def _oauth_error(answer: _Answer, *, grant: str, env: str) -> _Parsed:
    status, code = answer.status, oauth_error_code(answer.body)
    if code == "invalid_grant" and grant == "refresh_token":
        return _Parsed(
            Outcome.INVALID_CREDENTIALS,
            f"iQmetrix rejected the refresh token for {env}; it has expired or was revoked. "
            "Request a new token with the user name and password.",
            status,
        )
    if code == "invalid_grant":
        return _Parsed(
            Outcome.INVALID_CREDENTIALS,
            f"iQmetrix rejected the user name or password for {env}. Check the password in the "
            "onboarding package, or ask iQmetrix to reset it.",
            status,
        )
    if code == "invalid_client":
        return _Parsed(
            Outcome.INVALID_CLIENT,
            f"iQmetrix rejected the client ID or client secret for {env}. Check both against the "
            f"{env} onboarding package; Sandbox and Production have different ones.",
            status,
        )
    if code == "unsupported_grant_type":
        return _Parsed(
            Outcome.UNSUPPORTED_GRANT_TYPE,
            f"iQmetrix did not accept the format of the token request for {env}; the credentials "
            "were not checked. Report this to the Aisle Keys maintainers.",
            status,
        )
    why = f"error {code}" if code else "no reason given"
    return _Parsed(
        Outcome.UNEXPECTED_STATUS,
        f"iQmetrix refused the token request for {env} (HTTP {status}, {why}). Check the "
        "onboarding package; if it is right, contact iQmetrix support.",
        status,
    )


# --- /v1/me -----------------------------------------------------------------------------------


def _fetch_me(
    session: requests.Session, base: str, target: _Target, accept: str, access_token: str, *,
    check_deadline: float,
) -> tuple[dict | None, str | None]:
    # Its own connect + read, but never past the end of the whole check. The token request ends
    # by its own deadline, so a full budget is normally left; should it not be, the check
    # reports without /v1/me rather than run over the bound the claim span relies on.
    budget = min(target.budget, check_deadline - time.monotonic())
    if budget <= 0:
        return None, ("The token works, but /v1/me was not read: the check had used up its "
                      f"{in_words(round(2 * target.budget, 1))}.")
    headers = {
        "Accept": accept,
        "User-Agent": USER_AGENT,
        "Authorization": f"Bearer {access_token}",
    }
    try:
        answer = _send(session, "GET", base + ME_PATH, target, budget=budget, headers=headers)
    except _Fault as fault:
        # The network sentences speak of the accounts host in general; say which step it was.
        return None, f"The token works, but /v1/me could not be read. {fault.message}"
    if answer.status == 200:
        data = json_object(answer.body) if answer.body is not None else None
        # The answer is stored in a JSON column: one that SQLite or PostgreSQL would refuse (NaN,
        # Infinity, NUL, a lone surrogate) must not cost the check its record and audit event.
        if data is not None and storable_json(data):
            return data, None
        return None, ("The token works, but /v1/me did not answer with a JSON object Aisle Keys "
                      "can keep.")
    if answer.status == 401:
        return None, (f"The token works, but /v1/me refused it (HTTP 401); this {target.env} user "
                      "may lack permission to read its own profile.")
    return None, f"The token works, but /v1/me answered with HTTP {answer.status}."
