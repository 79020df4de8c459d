"""HTTP plumbing: a threading server that hands each request to the fake and writes its answer.

API answers carry `Access-Control-Allow-Origin: *`, as Stripe's API does for Stripe.js, whose requests come from
the merchant's checkout page on another origin."""

import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    publishable: bool = False  # made with the publishable key: the customer's browser, not the merchant
    at: float = field(default_factory=time.time)


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeStripe/1.0"
    server: "ApiServer"

    def _dispatch(self) -> None:
        self.server.answer(self)

    do_GET = do_POST = do_DELETE = _dispatch

    def do_OPTIONS(self) -> None:  # a CORS preflight
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE")
        self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Stripe-Account")
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8") if length else ""

    def respond(self, response: Response) -> None:
        self.send_response(response.status)
        if "Content-Type" not in response.headers:
            self.send_header("Content-Type", "application/json")
            self.send_header("Stripe-Version", API_VERSION)
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(response.body)))
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
