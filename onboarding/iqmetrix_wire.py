"""Wire-level helpers of the iQmetrix client (onboarding.iqmetrix): pure functions, no outcomes.

Base-URL rules, the bounded body read, exception-chain walking and the parsing of answer fields
(JSON, tokens, expires_in, OAuth2 error codes, Retry-After). Kept apart so the client module reads
as the mapping from answers to outcomes. Nothing here sees a secret it could leak: bodies are
parsed, never echoed.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.connection

MAX_BODY_BYTES = 1_048_576
# iQmetrix tokens last about 12 hours; a month or more means the answer is not what we think it is.
MAX_EXPIRES_IN = 30 * 24 * 3600
# A Retry-After of days is nonsense for a token endpoint; cap it so messages stay sensible.
MAX_RETRY_AFTER = 24 * 3600
_CHUNK = 65_536
OAUTH_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
)


class AccountsURLError(ValueError):
    """A base URL the client refuses (a configuration error). Its own class, so callers can turn
    exactly this into a message and let no other ValueError pass as one: a ValueError raised
    while sending (e.g. by http.client on a header value) could quote part of a token."""


def checked_base_url(base_url: str) -> str:
    """The base URL without trailing slash; AccountsURLError unless https://, or http:// on
    loopback."""
    # Messages name the scheme and host only: a URL with user info could carry a password.
    parts = urlsplit(base_url.strip()) if isinstance(base_url, str) else None
    if parts is None or not parts.hostname:
        raise AccountsURLError("The iQmetrix accounts URL must be an absolute https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise AccountsURLError(
            "The iQmetrix accounts URL must not contain a user name or password.")
    if parts.query or parts.fragment:
        raise AccountsURLError(
            "The iQmetrix accounts URL must not have a query string or fragment.")
    try:
        parts.port  # noqa: B018 -- urlsplit only validates the port when it is read
    except ValueError:
        raise AccountsURLError("The iQmetrix accounts URL has an invalid port.") from None
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and is_loopback(parts.hostname)):
        return base_url.strip().rstrip("/")
    raise AccountsURLError(
        f"The iQmetrix accounts URL must use https:// ({scheme}://{parts.hostname} given); "
        "http:// is allowed only for loopback hosts such as 127.0.0.1."
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodyDeadline(Exception):
    """The server kept sending but did not finish within the request's overall deadline."""


def read_capped(
    response: requests.Response, *, deadline: float, read_timeout: float
) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES; BodyDeadline when it does not end by
    `deadline` (a time.monotonic() value), which also covers the connect and the headers."""
    # read1 returns after a single receive. Each receive may wait only until the deadline (never
    # longer than the read timeout), so neither a server dribbling a byte at a time nor one
    # that sent its headers late can stretch the request past the deadline. Without the socket
    # (another urllib3 layout) the deadline is still checked between receives, so the request
    # overruns it by at most one read timeout. Decoding is bounded per chunk by urllib3.
    sock = _socket_of(response)
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BodyDeadline
        if sock is not None and sock.fileno() != -1:
            # -1: the whole announced body has arrived and the response closed its socket; the
            # next read1 returns b"" without touching it.
            sock.settimeout(min(read_timeout, remaining))
        try:
            chunk = response.raw.read1(_CHUNK, decode_content=True)
        except BODY_READ_ERRORS as exc:
            # A receive cut short by the deadline, not by the read timeout: say so.
            if is_timeout(exc) and time.monotonic() >= deadline - 0.01:
                raise BodyDeadline from None
            raise
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the body arrives on, to shorten its timeout; None if it cannot be found."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    # On "Connection: close" http.client hands the socket to the response and forgets it on the
    # connection, so look where the response reads from: its buffered socket file.
    reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


# --- a deadline for the status line and headers -------------------------------------------------
#
# A socket timeout bounds each receive, not the answer: a server sending its status line or
# headers a byte at a time, each inside the read timeout, would hold a check until http.client's
# header limits (100 lines of 64 KiB), which at that pace is days, far past the claim span and
# gunicorn's worker timeout. So every receive of the answer (status line, headers and body) may
# wait only until the request's deadline: the response reads its socket through `_DeadlineRaw`,
# which shortens the socket's timeout to what is left before each receive. No thread, no signal.
# The deadline is per request, set by `request_deadline` around the call (a ContextVar: the
# request runs in the caller's thread).

_DEADLINE: ContextVar[float | None] = ContextVar("iqmetrix_request_deadline", default=None)


@contextmanager
def request_deadline(deadline: float) -> Iterator[None]:
    """Answers read inside this block end by `deadline` (a time.monotonic() value)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class _DeadlineRaw(io.RawIOBase):
    """The socket file of an answer, each receive bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        # The socket's own file, which keeps the socket open while the answer is read (as
        # http.client needs when it closes the connection after a "Connection: close" answer).
        self._file = sock.makefile("rb", buffering=0)
        self._sock = sock  # the name `_socket_of` looks for, as on the standard socket file
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the answer did not end by the request's deadline")
        timeout = self._sock.gettimeout()
        self._sock.settimeout(remaining if timeout is None else min(timeout, remaining))
        try:
            return self._file.readinto(buffer)
        finally:
            if self._sock.fileno() != -1:
                self._sock.settimeout(timeout)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class _DeadlineSocket:
    """What http.client's response needs of a socket: `makefile("rb")`."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineRaw(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        deadline = _DEADLINE.get()
        super().__init__(_DeadlineSocket(sock, deadline) if deadline is not None else sock,
                         *args, **kwargs)


# --- a bound on the host name lookup ---------------------------------------------------------
# The resolver honours neither the connect timeout nor the request's deadline: a DNS server that
# does not answer holds a check for as long as the resolver keeps retrying (often 10 to 30 s),
# beyond the span a check's claim is sized for. The lookup runs in a thread of its own and is
# given up on when the connect timeout (or the deadline, if sooner) has passed; the thread ends
# when the resolver does. An address written as such is not looked up.


def lookup_within(host: str, port: int, *, seconds: float) -> list[str]:
    """The host's addresses, in the resolver's order, or socket.gaierror: the resolver's own,
    or EAI_AGAIN when it has not answered within `seconds`."""
    found: list[Any] = []
    failed: list[BaseException] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            family = urllib3.util.connection.allowed_gai_family()
            found.extend(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=resolve, name="iqmetrix-lookup", daemon=True).start()
    if not done.wait(max(0.0, seconds)):
        raise socket.gaierror(socket.EAI_AGAIN, f"no answer to the lookup within {seconds:g} s")
    if failed:
        raise failed[0]
    return list(dict.fromkeys(str(address[4][0]) for address in found))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _BoundedLookup:
    """Connections whose host name lookup ends within the connect timeout."""

    def _new_conn(self) -> socket.socket:
        host, limit = self._dns_host, self.timeout  # the connect timeout, as urllib3 sets it
        if _is_address(host) or not isinstance(limit, int | float):
            return super()._new_conn()
        deadline = _DEADLINE.get()
        if deadline is not None:
            limit = min(limit, deadline - time.monotonic())
        try:
            addresses = lookup_within(host, self.port, seconds=limit)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        except UnicodeError:  # a name that is no name: urllib3 says so itself
            return super()._new_conn()
        # Each address in turn, as urllib3 would, within what is left of the deadline: the name
        # stays the Host header, the TLS server name and what the certificate must match; only
        # the socket goes to the address.
        failure: Exception | None = None
        timeout = self.timeout
        for address in addresses:
            left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            if left <= 0:
                break
            self._dns_host, self.timeout = address, left
            try:
                return super()._new_conn()
            except urllib3.exceptions.ConnectTimeoutError as exc:  # refusals subclass it
                failure = exc
            finally:
                self._dns_host, self.timeout = host, timeout
        raise failure or urllib3.exceptions.ConnectTimeoutError(
            self, f"Connection to {self.host} timed out. (connect timeout={timeout})")


class _HTTPConnection(_BoundedLookup, urllib3.connection.HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(_BoundedLookup, urllib3.connection.HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose answers honour `request_deadline`; mount it for http and https."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: requests and urllib3 nest the root cause deeply."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += list(current.args)
        stack.extend(e for e in nested if isinstance(e, BaseException))


# What reading a streamed body can raise besides BodyDeadline (urllib3 wraps most socket errors).
BODY_READ_ERRORS = (
    urllib3.exceptions.HTTPError,
    requests.RequestException,
    OSError,
    http.client.HTTPException,
)


def is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, socket.timeout | urllib3.exceptions.TimeoutError) for e in causes(exc))


def network_error_kind(exc: requests.RequestException) -> str:
    """One of connect_timeout, read_timeout, tls_verify, tls, dns, refused, other."""
    chain = list(causes(exc))
    if isinstance(exc, requests.ConnectTimeout):
        return "connect_timeout"
    if isinstance(exc, requests.Timeout):
        return "read_timeout"
    if isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(e, ssl.SSLError | urllib3.exceptions.SSLError) for e in chain
    ):
        verify_failed = any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or any(
            "CERTIFICATE_VERIFY_FAILED" in str(e) for e in chain
        )
        return "tls_verify" if verify_failed else "tls"
    if any(isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError) for e in chain):
        return "dns"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused"
    return "other"


def _no_constant(name: str) -> float:
    # NaN, Infinity and -Infinity are not JSON (RFC 8259) though Python's json reads them; no
    # honest answer holds them, and neither SQLite nor PostgreSQL keeps them in a JSON column.
    raise ValueError("not JSON")


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON that Python reads as inf: the same non-number under another spelling.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not JSON")
    return value


def json_object(body: bytes) -> dict | None:
    """The body as a JSON object, or None: not JSON, not an object, or holding a number that is
    not finite (NaN, Infinity, 1e400)."""
    try:
        data = json.loads(body.decode("utf-8-sig"), parse_constant=_no_constant,
                          parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


# NUL and the halves of a surrogate pair: json reads "\u0000" and a lone "\ud800" into a str, but
# PostgreSQL's jsonb refuses both (SQLite keeps them), so an answer holding one cannot be stored
# the same way everywhere. A well-formed pair arrives as one character and does not match.
_UNSTORABLE_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def storable_json(value: object) -> bool:
    """Whether a value from json_object can go into a JSON column on SQLite and PostgreSQL alike:
    every string, keys included, free of NUL and lone surrogates, every number finite."""
    # A loop, not recursion: json_object accepts nesting almost as deep as the recursion limit.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if _UNSTORABLE_TEXT.search(item):
                return False
        elif isinstance(item, float) and not math.isfinite(item):
            return False
    return True


# RFC 6749 (appendix A.12, A.17): an access or refresh token is 1*VSCHAR, printable ASCII
# %x20-7E; RFC 6750's b64token is a subset. Anything else (a line break, NUL, a letter outside
# ASCII) could not be sent back as it came: http.client encodes header values as Latin-1 and
# its error would quote the token, and a line break would split the Authorization header.
_TOKEN_TEXT = re.compile(r"[\x20-\x7e]+")


def is_token_text(value: str) -> bool:
    return _TOKEN_TEXT.fullmatch(value) is not None


def parse_expires_in(value: object) -> tuple[int | None, str]:
    """(seconds, "") when usable, else (None, what is wrong with it, in words)."""
    # bool is an int in Python, and JSON true must not pass as "1 second".
    if isinstance(value, bool):
        return None, "is not a number"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,12}\s*", value):
        value = int(value)
    if not isinstance(value, int):
        return None, "is not a whole number of seconds"
    if value <= 0:
        return None, "is not positive"
    if value > MAX_EXPIRES_IN:
        return None, "is more than 30 days"
    return value, ""


def oauth_error_code(body: bytes | None) -> str | None:
    """The OAuth2 error code from JSON `{"error": ...}` or plain text; only known codes count."""
    if not body:
        return None
    data = json_object(body)
    if data is not None and isinstance(data.get("error"), str):
        code = data["error"].strip().lower()
        return code if code in OAUTH_ERRORS else None
    text = body.decode("utf-8", errors="replace").lower()
    for candidate in OAUTH_ERRORS:
        # Whole words only, so "invalid_client" does not match inside "xinvalid_clients".
        if re.search(rf"(?<![a-z_]){candidate}(?![a-z_])", text):
            return candidate
    return None


def parse_retry_after(value: str | None, *, now: datetime) -> int | None:
    """Retry-After as delta-seconds or an HTTP-date, in whole seconds from `now`."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0, math.ceil((when - now).total_seconds())), MAX_RETRY_AFTER)


def in_words(seconds: float) -> str:
    """A duration for a sentence: "0.5 seconds", "30 seconds", "12 minutes", "about 12 hours"."""
    if seconds < 120:
        number = f"{seconds:g}"
        return f"{number} second" if number == "1" else f"{number} seconds"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} minutes"
    if seconds < 2 * 86400:
        return f"about {round(seconds / 3600)} hours"
    return f"about {round(seconds / 86400)} days"
