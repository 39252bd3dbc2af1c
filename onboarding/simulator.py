"""A local stand-in for the iQmetrix accounts host, for development, demos and tests.

Standard library only, and deliberately sharing no code with the client (onboarding.iqmetrix):
a bug in shared parsing would otherwise hide on both sides. It follows what is known of the real
host (see docs on the iQmetrix API): the password and refresh grants on POST /v1/oauth2/token
(form body only), GET /v1/me with a bearer token, GET /v1/ping, X-RateLimit-* headers and a
plain-text 429. Tokens live in memory only. The access log never shows bodies or query strings,
which could hold credentials.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

__all__ = ["DEMO_ACCOUNT", "Account", "Simulator", "load_accounts"]

APPLICATION_VERSION = "2.0.0.1155"
DB_VERSION = 17
# Sample company entity id used for ParentEntityId in /v1/me answers.
PARENT_ENTITY_ID = 14146
RATE_LIMIT = 1000  # requests per window, like a generous per-service quota
RATE_WINDOW_SECONDS = 60
MAX_REQUEST_BODY = 64 * 1024


@dataclass
class Account:
    client_id: str
    client_secret: str
    username: str
    password: str


# Public demo values: printed by the command, safe to put in READMEs; never real credentials.
DEMO_ACCOUNT = Account(
    client_id="aislekeys-demo",
    client_secret="demo-client-secret",  # noqa: S106 -- public demo value
    username="demo@aislekeys.test",
    password="demo-password",  # noqa: S106 -- public demo value
)


@dataclass
class _Issued:
    account: Account
    access_token: str
    refresh_token: str
    expires_at: float  # time.monotonic()
    revoked: bool = False


class Simulator:
    """A running fake accounts host: `start()` in a thread, or `serve_forever()` in this one."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        accounts: list[Account] | None = None,
        latency_ms: int = 0,
        expires_in: int = 43199,
    ) -> None:
        self.host, self.port = host, port
        self.accounts = list(accounts) if accounts is not None else [DEMO_ACCOUNT]
        self.latency_ms = latency_ms
        self.expires_in = expires_in
        self.token_requests = 0
        self._lock = threading.Lock()
        self._by_access: dict[str, _Issued] = {}
        self._by_refresh: dict[str, _Issued] = {}
        self._forced_429 = 0
        self._forced_retry_after = 30
        self._window_start = time.time()
        self._window_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening socket (port 0 picks a free one); `url` is known from here on."""
        if self._server is None:
            self._server = _Server(self)

    def start(self) -> None:
        self.bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name="iqmetrix-simulator",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until KeyboardInterrupt (the command maps SIGTERM to it)."""
        self.bind()
        assert self._server is not None
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("The simulator is not bound yet; call start() or bind() first.")
        host, port = self._server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

    # --- test controls ------------------------------------------------------------------------

    def rate_limit_next(self, count: int, retry_after: int = 30) -> None:
        """The next `count` token requests get HTTP 429 with this Retry-After."""
        with self._lock:
            self._forced_429 = count
            self._forced_retry_after = retry_after

    def expire_tokens(self) -> None:
        """Make every access token issued so far expired, as if 12 hours had passed."""
        with self._lock:
            for issued in self._by_access.values():
                issued.expires_at = 0.0

    @property
    def issued_tokens(self) -> int:
        with self._lock:
            return len(self._by_access)

    # --- behaviour (called from handler threads) ----------------------------------------------

    def _count_request(self) -> tuple[int, int]:
        """Count one request in the rate window; (remaining, seconds until the window resets)."""
        with self._lock:
            now = time.time()
            if now - self._window_start >= RATE_WINDOW_SECONDS:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            reset_in = max(0, int(self._window_start + RATE_WINDOW_SECONDS - now))
            return RATE_LIMIT - self._window_count, reset_in

    def _take_forced_429(self) -> int | None:
        with self._lock:
            self.token_requests += 1
            if self._forced_429 > 0:
                self._forced_429 -= 1
                return self._forced_retry_after
            return None

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        grant = form.get("grant_type", "")
        if grant not in ("password", "refresh_token"):
            return 400, _oauth_error("unsupported_grant_type", "The grant type is not supported.")
        client = self._client_accounts(form.get("client_id", ""), form.get("client_secret", ""))
        if not client:
            return 400, _oauth_error("invalid_client", "The client ID or secret is incorrect.")
        with self._lock:
            if grant == "password":
                username, password = form.get("username", ""), form.get("password", "")
                for account in client:
                    if _same(account.username.lower(), username.lower()) and _same(
                        account.password, password
                    ):
                        return 200, self._issue(account)
                return 400, _oauth_error("invalid_grant", "The user name or password is incorrect.")
            old = self._by_refresh.get(form.get("refresh_token", ""))
            if old is None or old.account.client_id != client[0].client_id:
                return 400, _oauth_error("invalid_grant", "The refresh token is invalid.")
            # One-time use, and the access token it replaces stops working (as iQmetrix documents).
            del self._by_refresh[old.refresh_token]
            old.revoked = True
            return 200, self._issue(old.account)

    def _client_accounts(self, client_id: str, client_secret: str) -> list[Account]:
        return [
            a for a in self.accounts
            if _same(a.client_id, client_id) and _same(a.client_secret, client_secret)
        ]

    def _issue(self, account: Account) -> dict[str, object]:
        issued = _Issued(
            account=account,
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            expires_at=time.monotonic() + self.expires_in,
        )
        self._by_access[issued.access_token] = issued
        self._by_refresh[issued.refresh_token] = issued
        return {
            "access_token": issued.access_token,
            "expires_in": self.expires_in,
            "refresh_token": issued.refresh_token,
        }

    def _me(self, authorization: str) -> dict[str, object] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self._lock:
            issued = self._by_access.get(token.strip())
            if issued is None or issued.revoked or issued.expires_at <= time.monotonic():
                return None
            index = self.accounts.index(issued.account) if issued.account in self.accounts else 0
        return {
            "Id": 22000 + index,
            "UserName": issued.account.username,
            "Email": issued.account.username,
            "ParentEntityId": PARENT_ENTITY_ID,
        }


def _same(a: str, b: str) -> bool:
    # Constant-time, like a real server should; also keeps the simulator a fair model.
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _oauth_error(code: str, description: str) -> dict[str, object]:
    return {"error": code, "error_description": description}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        if ":" in simulator.host:
            self.address_family = socket.AF_INET6
        super().__init__((simulator.host, simulator.port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hanging up mid-answer are normal here; no tracebacks on stderr.
        logger.debug("simulator: error while handling a request", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "iQmetrixSimulator/1.0"
    # TCP_NODELAY: an answer goes out as two writes (headers, then body). With Nagle's algorithm
    # the body waits for the client to acknowledge the headers, and on a kept-alive connection
    # (the /v1/me call after a token) the client delays that by up to 40 ms: every check with
    # /v1/me took 40 ms longer against the simulator than its latency setting.
    disable_nagle_algorithm = True
    sys_version = ""

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def _dispatch(self, method: str) -> None:
        sim = self.server.simulator
        body = self._read_body()
        if body is None:
            return
        if sim.latency_ms > 0:
            time.sleep(sim.latency_ms / 1000)
        path = urlsplit(self.path).path.rstrip("/").lower()
        remaining, reset_in = sim._count_request()
        rate_headers = _rate_headers(max(0, remaining), reset_in)
        if path == "/v1/oauth2/token":
            if method != "POST":
                self._send(405, b"The requested resource does not support GET.", "text/plain",
                           {"Allow": "POST", **rate_headers})
                return
            forced = sim._take_forced_429()
            if forced is not None or remaining < 0:
                wait = forced if forced is not None else reset_in
                self._send(429, b"rate limit exceeded", "text/plain",
                           {**_rate_headers(0, reset_in), "Retry-After": str(wait)})
                return
            status, answer = sim._token(self._form(body))
            self._send_json(status, answer, {"Cache-Control": "no-store", "Pragma": "no-cache",
                                             **rate_headers})
        elif path == "/v1/me" and method == "GET":
            me = sim._me(self.headers.get("Authorization", ""))
            if me is None:
                self._send(401, b"Authorization has been denied for this request.", "text/plain",
                           rate_headers)
            else:
                self._send_json(200, me, rate_headers)
        elif path in ("/v1/ping", "/ping") and method == "GET":
            ping = {"ApplicationVersion": APPLICATION_VERSION, "DbVersion": DB_VERSION}
            self._send_json(200, ping, rate_headers)
        else:
            self._send(404, b"Not found.", "text/plain", rate_headers)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BODY or "Transfer-Encoding" in self.headers:
            self.close_connection = True
            self._send(400, b"Bad request.", "text/plain", {})
            return None
        return self.rfile.read(length) if length else b""

    def _form(self, body: bytes) -> dict[str, str]:
        """The body's form fields; the query string is ignored, as the real host does."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}  # no grant_type -> unsupported_grant_type, like the real host
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return {}
        return {key: values[0] for key, values in fields.items()}

    def _send_json(self, status: int, data: dict[str, object], headers: dict[str, str]) -> None:
        hal = "application/hal+json" in self.headers.get("Accept", "")
        body = json.dumps(data).encode("utf-8")
        self._send(status, body, "application/hal+json" if hal else "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method, path without query string, status: nothing a credential could hide in.
        logger.info("%s %s %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: object) -> None:
        # The arguments can hold the raw request line, query string included: log the template.
        logger.debug("simulator: %s", format)


def _rate_headers(remaining: int, reset_in: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(RATE_LIMIT),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(time.time()) + reset_in),
        "X-RateLimit-ResetSeconds": str(reset_in),
    }


def load_accounts(path: str | Path) -> list[Account]:
    """Accounts from a JSON list of {client_id, client_secret, username, password} objects."""
    # Errors name the file, the entry and the key, never a value: the file holds secrets.
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"Accounts file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"Accounts file {path} cannot be read ({type(exc).__name__}).") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"Accounts file {path} is not valid JSON (line {exc.lineno}).") from None
    except RecursionError:
        # json nests by recursion: "[[[…" a few thousand deep exhausts the stack. An accounts
        # file is two levels deep; say so instead of a traceback.
        raise ValueError(f"Accounts file {path} nests too deeply to be a list of accounts."
                         ) from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"Accounts file {path} must hold a non-empty JSON list of accounts.")
    keys = ("client_id", "client_secret", "username", "password")
    accounts: list[Account] = []
    for number, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"Accounts file {path}: entry {number} is not a JSON object.")
        missing = [k for k in keys if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise ValueError(
                f"Accounts file {path}: entry {number} needs non-empty text for "
                f"{', '.join(missing)}."
            )
        unknown = sorted(set(entry) - set(keys))
        if unknown:
            raise ValueError(f"Accounts file {path}: entry {number} has unknown keys "
                             f"{', '.join(unknown)}.")
        account = Account(**{k: entry[k] for k in keys})
        if any(a.client_id == account.client_id and a.username.lower() == account.username.lower()
               for a in accounts):
            raise ValueError(f"Accounts file {path}: entry {number} repeats a client ID and "
                             "user name pair.")
        accounts.append(account)
    return accounts
