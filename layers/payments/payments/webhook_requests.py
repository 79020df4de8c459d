"""Turn an HTTP request into a verified Stripe event, or say (with a 4xx) why not.

The signature is checked by stripe-python over the raw body, against every signing secret
in force (two during a rotation). stripe-python rejects old timestamps only; a timestamp
too far in the future is rejected here.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import stripe


class WebhookRejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NotAnHttpApiEvent(TypeError):
    """The function was invoked with something other than the HTTP API request it serves."""


def request_method(event: Any) -> str:
    """The method of an API Gateway HTTP API request (payload format 2.0); NotAnHttpApiEvent for any other event."""
    try:
        return str(event["requestContext"]["http"]["method"])
    except (KeyError, TypeError):
        got = f"an event with keys {', '.join(map(str, event))}" if isinstance(event, dict) else type(event).__name__
        raise NotAnHttpApiEvent(
            "expected an API Gateway HTTP API event, payload format 2.0 (requestContext.http.method, headers, body; "
            f"see events/webhook/), got {got}"
        ) from None


def _timestamp(signature_header: str) -> int:
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            return int(value)
    raise WebhookRejected(400, "Stripe-Signature has no timestamp")


def verify_stripe_request(
    *,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    signing_secrets: Sequence[str],
    tolerance_seconds: int,
    max_body_bytes: int,
    now: int,
) -> dict[str, Any]:
    """Return the Stripe event the request carries. `headers` keys are lower-case."""
    if method.upper() != "POST":
        raise WebhookRejected(405, f"method {method} not allowed; Stripe POSTs events")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise WebhookRejected(415, f"content type {content_type or 'missing'}; expected application/json")
    if len(body) > max_body_bytes:
        raise WebhookRejected(413, f"body of {len(body)} bytes is over the {max_body_bytes}-byte limit")
    if not body:
        raise WebhookRejected(400, "empty body")
    signature = headers.get("stripe-signature", "")
    if not signature:
        raise WebhookRejected(400, "missing Stripe-Signature header")
    if not signature.isascii():  # stripe-python's constant-time compare raises TypeError on it
        raise WebhookRejected(400, "Stripe-Signature is not ASCII")
    if _timestamp(signature) > now + tolerance_seconds:
        raise WebhookRejected(400, "Stripe-Signature timestamp is in the future")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    if not signing_secrets:
        raise RuntimeError("no webhook signing secret configured")
    for secret in signing_secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance_seconds)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise WebhookRejected(400, "signature does not match, or its timestamp is too old")
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    return event
