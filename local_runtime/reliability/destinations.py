"""FakeStripe's own delivery (plan "stripe") to each order's event destination.

FakeStripe sends every event to every destination it has, and a run's orders each have their own. So the stack
gives it the four (`scenarios.DESTINATIONS`), and each passes on only the events of the orders whose destination
it is: a webhook endpoint whose URL is a relay here, which forwards the request as FakeStripe made it (its body,
its signature) to the webhook, and answers with the webhook's answer; an EventBridge destination whose `publish`
puts the entry on the partner bus (`Courier.put_on_bus`, which follows the message until it is handled). An event
of another order's destination is answered 200, and goes nowhere: Stripe would not have sent it there.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_runtime.fake_stripe import FakeStripe
from local_runtime.reliability.courier import Courier, DeliveryRecord
from local_runtime.scenarios import STRIPE_EVENT_SOURCE

FORWARDED_HEADERS = ("Content-Type", "User-Agent", "Stripe-Signature")


class StripesDestinations:
    """The four event destinations FakeStripe delivers to, each passing on only its own orders' events."""

    def __init__(self, courier: Courier, webhook_url: str) -> None:
        self._courier = courier
        parsed = urllib.parse.urlsplit(webhook_url)
        self._host, self._port, self._path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        relay = self

        class Relay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
                status = relay.forward(self.path.strip("/"), body, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="stripe-relay").start()

    def add_to(self, fake: FakeStripe) -> None:
        relay = f"http://127.0.0.1:{self._server.server_address[1]}"
        for payload in ("snapshot", "thin"):
            fake.add_webhook_endpoint(f"{relay}/{payload}", payload=payload)
            fake.add_eventbridge_destination(self._publisher(payload), payload=payload, source=STRIPE_EVENT_SOURCE)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(self, payload: str, body: bytes, headers: dict[str, str]) -> int:
        """A webhook request FakeStripe made to the endpoint taking `payload`: to the webhook if the event's order
        has that destination (the webhook's status), else nowhere (200)."""
        event_id = str(_parsed(body).get("id"))
        if self._courier.destination_of(event_id) != _destination("webhook", payload):
            return 200
        order_id = self._courier.order_of_event(event_id)
        status, error = None, None
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure}"
        finally:
            connection.close()
        if order_id:
            kind = str(_parsed(body).get("type"))
            self._courier.record(DeliveryRecord(order_id, event_id, kind, 1, status, error))
        return status or 502

    def _publisher(self, payload: str) -> Any:
        def publish(entry: dict[str, Any]) -> None:
            """FakeStripe's PutEvents entry: onto the bus if the event's order has this destination."""
            event = json.loads(entry["Detail"])
            event_id = str(event.get("id"))
            if self._courier.destination_of(event_id) != _destination("eventbridge", payload):
                return
            order_id = self._courier.order_of_event(event_id)
            self._courier.put_on_bus(order_id, event, entry)  # what raises is a failed delivery: FakeStripe retries
            self._courier.record(DeliveryRecord(order_id, event_id, str(event.get("type")), 1, None, None, True))

        return publish


def _destination(kind: str, payload: str) -> str:
    return kind if payload == "snapshot" else f"{kind} thin"


def _parsed(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}
