"""Webhook endpoints, one kind of event destination (https://docs.stripe.com/webhooks): each event POSTed as
JSON to the endpoint's URL, signed with its secret. A thin event is signed and sent the same way, and
stripe-python reads it with `StripeClient.parse_event_notification(body, sig_header, secret)`, which checks
the same `Stripe-Signature` before anything else (https://docs.stripe.com/event-destinations#thin-payload)."""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from local_runtime.fake_stripe.objects import Obj

WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign_payload(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>
    (https://docs.stripe.com/webhooks#verify-manually).

    Bytes are signed as they are, so that a body that is not UTF-8 can be signed too. The timestamp is real
    time, whatever the fake's clock says: receivers check it against their own."""
    t = int(time.time()) if timestamp is None else timestamp
    body = payload if isinstance(payload, bytes) else payload.encode()
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


@dataclass(frozen=True, eq=False)
class WebhookEndpoint:
    url: str
    secret: str
    payload: str  # "snapshot" | "thin"
    destination_type = "webhook_endpoint"  # the event destination `type` Stripe gives it

    @property
    def address(self) -> str:
        return self.url

    def send(self, event: Obj) -> tuple[int | None, str | None]:
        """POST the event; (HTTP status, None), or (None, the connection error)."""
        body = json.dumps(event, indent=2)
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": WEBHOOK_USER_AGENT,
                "Stripe-Signature": sign_payload(body, self.secret),
            },
        )
        try:
            with _OPENER.open(request, timeout=5) as response:
                return response.status, None
        except urllib.error.HTTPError as e:
            return e.code, None
        except (OSError, ValueError) as e:
            return None, f"{type(e).__name__}: {e}"
