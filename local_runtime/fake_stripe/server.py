"""HTTP plumbing: a threading server that hands each request to the fake and writes its answer; and
Stripe's API-key authentication (https://docs.stripe.com/api/authentication)."""

import base64
import hmac
import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_runtime.fake_stripe.errors import Rejected
from local_runtime.fake_stripe.idempotency import Response
from local_runtime.fake_stripe.objects import API_VERSION

log = logging.getLogger(__name__)


@dataclass
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    status: int | None = None  # None when the connection was reset
    replayed: bool = False
    request_id: str = ""
    fault: str | None = None  # "error" | "reset" when fail_next() fired
    at: float = field(default_factory=time.time)


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeStripe/1.0"
    server: "ApiServer"

    def _dispatch(self) -> None:
        self.server.answer(self)

    do_GET = do_POST = do_DELETE = _dispatch

    def body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def respond(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Stripe-Version", API_VERSION)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def reset_connection(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class ApiServer(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of concurrent requests (same-key races) must not be refused

    def __init__(self, address: tuple[str, int], answer: Callable[[Handler], None]) -> None:
        super().__init__(address, Handler)
        self.answer = answer


def authenticate(authorization: str | None, api_key: str) -> None:
    """Accept the secret key as Bearer or Basic auth, as Stripe does; refuse anything else with a 401."""
    key = None
    if authorization and authorization.startswith("Bearer "):
        key = authorization[7:].strip()
    elif authorization and authorization.startswith("Basic "):
        key = base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
    if not key:
        raise Rejected(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if not hmac.compare_digest(key, api_key):
        masked = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
        raise Rejected(401, f"Invalid API Key provided: {masked}")
