"""Small misbehaving HTTP(S) servers on 127.0.0.1 for testing the iQmetrix client.

`fault_server(handler)` runs a stdlib server on a free port in a thread for the duration of a
`with` block. The handler gets an `Exchange`: what the client sent (method, path, query, headers,
body) and ways to answer, answer in pieces, or hold the connection open. Every request is also
recorded in `server.seen`, so a test can assert what reached the server, or that nothing did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Exchange:
    """One request as the handler function sees it."""

    def __init__(self, http: BaseHTTPRequestHandler, seen: Seen, stopping: threading.Event) -> None:
        self.http, self.seen, self.stopping = http, seen, stopping

    def reply(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.http.send_response(status)
        self.http.send_header("Content-Type", content_type)
        self.http.send_header("Content-Length", str(len(data)))
        # The server closes every connection after one answer (see _RequestHandler), so it says
        # so: without the header a client may reuse the connection for its next request (the
        # /v1/me after a token) and, when the close arrives first, fail to send it.
        self.http.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.http.send_header(name, value)
        self.http.end_headers()
        self.http.wfile.write(data)

    def reply_json(
        self, status: int, data: object, *, headers: dict[str, str] | None = None
    ) -> None:
        self.reply(status, json.dumps(data), headers=headers)

    def write(self, data: bytes) -> None:
        """Raw bytes on the connection (status line and headers are up to the caller)."""
        self.http.wfile.write(data)
        self.http.wfile.flush()

    def hold(self) -> None:
        """Never answer: keep the connection open until the server stops."""
        self.stopping.wait()


Handler = Callable[[Exchange], None]


@dataclass
class FaultServer:
    url: str
    port: int
    seen: list[Seen] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    record: FaultServer
    stopping: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on purpose (timeouts, size limits) are the point of these tests


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        seen = Seen(self.command, parts.path, parts.query, dict(self.headers.items()),
                    self.rfile.read(length) if length else b"")
        self.server.record.seen.append(seen)
        self.close_connection = True  # one request per connection keeps the servers simple
        # A client giving up (timeouts, size limits) is what these servers are for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.server.handler(Exchange(self, seen, self.server.stopping))

    do_GET = do_POST = do_PUT = do_DELETE = _any

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def fault_server(
    handler: Handler, *, tls: tuple[Path, Path] | None = None
) -> Iterator[FaultServer]:
    """A server on a free 127.0.0.1 port answering every request with `handler`.

    `tls=(certfile, keyfile)` serves HTTPS with that certificate.
    """
    server = _Server(("127.0.0.1", 0), _RequestHandler)
    port = server.server_address[1]
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=tls[0], keyfile=tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.handler, server.stopping = handler, threading.Event()
    server.record = FaultServer(url=f"{scheme}://127.0.0.1:{port}", port=port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.record
    finally:
        server.stopping.set()  # releases handlers that hold or dribble
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def token_then_me(token: dict | bytes | str, me: dict | bytes | str = b'{"Id": 1}') -> Handler:
    """An accounts host that answers the token request with `token` and /v1/me with `me`, both
    HTTP 200: a dict as JSON, text or bytes exactly as given (JSON spelled by hand, e.g. 1e400)."""

    def handler(ex: Exchange) -> None:
        body = me if ex.seen.path.endswith("/v1/me") else token
        if isinstance(body, dict):
            ex.reply_json(200, body)
        else:
            ex.reply(200, body)

    return handler


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (free a moment ago), for "connection refused"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 and localhost: (certfile, keyfile)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile
