"""Helpers for driving the fake Stripe with the real stripe-python client over HTTP."""

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe

PI = "/v1/payment_intents"
STRIPE_JS_HARNESS = Path(__file__).with_name("stripe_js_harness.js")


class WebhookReceiver:
    """A tiny HTTP endpoint that records every webhook POST (optionally failing the first few)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.received.append((dict(self.headers), body))
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= failing
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in list(self.received)]

    def types(self, pi_id: str | None = None) -> list[str]:
        return [
            e["type"]
            for e in self.events()
            if pi_id is None or pi_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def client_of(fake: FakeStripe, max_network_retries: int = 2) -> stripe.StripeClient:
    return stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url}, max_network_retries=max_network_retries)


def create(
    client: stripe.StripeClient, pm: str | None = None, key: str | None = None, **extra: Any
) -> stripe.PaymentIntent:
    params: dict[str, Any] = {"amount": 2500, "currency": "eur", "metadata": {"order_id": "ord_1"}}
    if pm:
        params.update(payment_method=pm, confirm=True)
    params.update(extra)
    return client.v1.payment_intents.create(params, {"idempotency_key": key} if key else None)


def raw_request(
    fake: FakeStripe, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        fake.url + path, data=body.encode() if method == "POST" else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def run_stripe_js(fake: FakeStripe, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the fake's stand-in Stripe.js in Node (stripe_js_harness.js) through `steps`; skipped without Node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed")
    config = json.dumps({"base": fake.url, "key": fake.publishable_key, "steps": steps})
    done = subprocess.run(
        [node, str(STRIPE_JS_HARNESS), config], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
