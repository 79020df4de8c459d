"""Bad webhook requests: forged, tampered, stale, malformed or foreign, each with the status it must get."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_runtime.fake_stripe import sign_payload
from local_runtime.reliability.settings import API_KEY, PREVIOUS_SECRET, SIGNING_SECRET, WEBHOOK_PATH


@dataclass
class Request:
    body: bytes = b""
    headers: dict[str, str | bytes] = field(default_factory=dict)
    method: str = "POST"
    path: str = WEBHOOK_PATH


@dataclass
class Target:
    """What the bad requests aim at: an order waiting on its task token, and one that has finished."""

    app_id: str
    waiting: dict[str, Any]  # the waiting order's PaymentIntent (requires_action, token stored)
    finished: dict[str, Any]  # the finished order's PaymentIntent (succeeded, fulfilled)
    finished_event: dict[str, Any]  # the payment_intent.succeeded event Stripe sent for it


@dataclass(frozen=True)
class WebhookCase:
    name: str
    expected: int
    build: Callable[[Target], Request]
    rotation: bool = False  # runs while the secret holds a previous signing secret too


def _now() -> int:
    return int(time.time())


def _evt_id() -> str:
    return "evt_rel" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20))


def _event(pi: dict[str, Any], event_type: str, **changes: Any) -> dict[str, Any]:
    obj = {**json.loads(json.dumps(pi)), **changes.pop("object", {})}
    event = {
        "id": _evt_id(),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": _now(),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    event.update(changes)
    return event


def _forged_success(target: Target, **changes: Any) -> dict[str, Any]:
    """What an attacker wants: the waiting order's PaymentIntent, succeeded."""
    return _event(target.waiting, "payment_intent.succeeded", object={"status": "succeeded"}, **changes)


def _foreign(target: Target, **changes: Any) -> dict[str, Any]:
    """A genuine-looking event this deployment must ignore: a PaymentIntent it did not create."""
    pi = _succeeded_payment_intent("pi_rel_not_ours_", 1000, {"order_id": "someone-elses-order"})
    return _event(pi, "payment_intent.succeeded", **changes)


def _succeeded_payment_intent(id_prefix: str, amount: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": id_prefix + _evt_id()[7:],
        "object": "payment_intent",
        "amount": amount,
        "currency": "usd",
        "status": "succeeded",
        "metadata": metadata,
        "last_payment_error": None,
    }


def _signature(payload: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> str:
    return sign_payload(payload, secret, _now() if timestamp is None else timestamp)


def _signed(
    payload: Any, *, secret: str = SIGNING_SECRET, timestamp: int | None = None, content_type: str = "application/json"
) -> Request:
    body = payload if isinstance(payload, bytes) else _json(payload)
    return Request(body, {"Content-Type": content_type, "Stripe-Signature": _signature(body, secret, timestamp)})


def _raw_signed(body: bytes, header: str | bytes) -> Request:
    return Request(body, {"Content-Type": "application/json", "Stripe-Signature": header})


def _hmac(body: bytes, secret: str, timestamp: int) -> str:
    return _signature(body, secret, timestamp).split("v1=")[1]


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, indent=2).encode()


def _changed_after_signing(
    payload: Callable[[Target], Any], change: Callable[[bytes], bytes]
) -> Callable[[Target], Request]:
    """A request signed over one body and sent with another."""

    def build(target: Target) -> Request:
        request = _signed(payload(target))
        request.body = change(request.body)
        return request

    return build


def _other_timestamp(target: Target) -> Request:
    body = _json(_forged_success(target))
    now = _now()
    return _raw_signed(body, f"t={now},v1={_hmac(body, SIGNING_SECRET, now - 10)}")


def _with_header(header: Callable[[bytes, int], str | bytes], payload: Callable[[Target], Any] = _forged_success):
    def build(target: Target) -> Request:
        body = _json(payload(target))
        return _raw_signed(body, header(body, _now()))

    return build


def _at(offset: int, payload: Callable[[Target], Any] = _forged_success) -> Callable[[Target], Request]:
    return lambda target: _signed(payload(target), timestamp=_now() + offset)


def _padded_to(size: int) -> Callable[[Target], Request]:
    def build(target: Target) -> Request:
        body = _json(_foreign(target))
        body = body[:-1] + b" " * (size - len(body)) + body[-1:]
        return _signed(body)

    return build


def _base64_body(sign_as_sent: bool) -> Callable[[Target], Request]:
    def build(target: Target) -> Request:
        body = _json(_forged_success(target))
        encoded = base64.b64encode(body)
        return Request(
            encoded,
            {"Content-Type": "application/json", "Stripe-Signature": _signature(encoded if sign_as_sent else body)},
        )

    return build


def _nested(depth: int) -> bytes:
    return b'{"id": "evt_deep", "type": "payment_intent.succeeded", "data": ' + b"[" * depth + b"]" * depth + b"}"


def _unsigned(content_type: str | None, method: str = "POST", path: str = WEBHOOK_PATH):
    def build(target: Target) -> Request:
        request = _signed(_foreign(target))
        if content_type is None:
            del request.headers["Content-Type"]
        else:
            request.headers["Content-Type"] = content_type
        request.method, request.path = method, path
        return request

    return build


def _waiting(event_type: str, **object_changes: Any) -> Callable[[Target], Request]:
    return lambda target: _signed(_event(target.waiting, event_type, object=object_changes))


def _waiting_event(**changes: Any) -> Callable[[Target], Request]:
    return lambda target: _signed(_event(target.waiting, "payment_intent.succeeded", **changes))


def _without(*path: str) -> Callable[[Target], Request]:
    def build(target: Target) -> Request:
        event = _forged_success(target)
        node = event
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return _signed(event)

    return build


def _thin(event_type: str) -> Callable[[Target], Request]:
    def build(target: Target) -> Request:
        return _signed(
            {
                "id": _evt_id(),
                "object": "v2.core.event",
                "type": event_type,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "livemode": False,
                "related_object": {
                    "id": target.waiting["id"],
                    "type": "payment_intent",
                    "url": f"/v1/payment_intents/{target.waiting['id']}",
                },
                "reason": None,
            }
        )

    return build


def _finished_again(target: Target) -> Request:
    return _signed(target.finished_event)


def _older_after_newer(target: Target) -> Request:
    return _signed(
        _event(
            target.finished,
            "payment_intent.processing",
            object={"status": "processing"},
            created=target.finished_event["created"] - 5,
        )
    )


def _connect_event(target: Target) -> Request:
    # An event from another Stripe account (a Connect endpoint): a PaymentIntent this deployment never
    # created, even if its metadata claims to be ours.
    metadata = {"app_id": target.app_id, "order_id": target.waiting["metadata"]["order_id"], "attempt": "1"}
    pi = _succeeded_payment_intent("pi_rel_connected_", 3000, metadata)
    return _signed(_event(pi, "payment_intent.succeeded", account="acct_1ReliabilityOther"))


WEBHOOK_CASES: tuple[WebhookCase, ...] = (
    # -- the signature
    WebhookCase(
        "missing Stripe-Signature header",
        400,
        lambda t: Request(_json(_forged_success(t)), {"Content-Type": "application/json"}),
    ),
    WebhookCase("empty Stripe-Signature header", 400, _with_header(lambda body, now: "")),
    WebhookCase("signed with the wrong secret", 400, lambda t: _signed(_forged_success(t), secret="whsec_attacker")),
    WebhookCase(
        "signed with the API key instead of the signing secret",
        400,
        lambda t: _signed(_forged_success(t), secret=API_KEY),
    ),
    WebhookCase(
        "tampered body: type changed after signing",
        400,
        _changed_after_signing(
            lambda t: _event(t.waiting, "payment_intent.requires_action"),
            lambda body: body.replace(b'"payment_intent.requires_action"', b'"payment_intent.succeeded"'),
        ),
    ),
    WebhookCase(
        "tampered body: amount changed after signing",
        400,
        _changed_after_signing(_foreign, lambda body: body.replace(b'"amount": 1000', b'"amount": 1')),
    ),
    WebhookCase(
        "tampered body: a byte appended", 400, _changed_after_signing(_forged_success, lambda body: body + b"\n")
    ),
    WebhookCase(
        "tampered body: the same JSON re-serialised",
        400,
        _changed_after_signing(
            _forged_success, lambda body: json.dumps(json.loads(body), separators=(",", ":")).encode()
        ),
    ),
    WebhookCase("signature made for another timestamp", 400, _other_timestamp),
    WebhookCase("timestamp 301 s old (tolerance 300 s)", 400, _at(-301)),
    WebhookCase("timestamp a day old", 400, _at(-86400)),
    WebhookCase("timestamp 301 s in the future", 400, _at(301)),
    WebhookCase("timestamp a year in the future", 400, _at(365 * 86400)),
    WebhookCase("timestamp 0", 400, _with_header(lambda b, now: f"t=0,v1={_hmac(b, SIGNING_SECRET, 0)}")),
    WebhookCase(
        "timestamp not a number", 400, _with_header(lambda b, now: f"t=soon,v1={_hmac(b, SIGNING_SECRET, now)}")
    ),
    WebhookCase("timestamp missing", 400, _with_header(lambda b, now: f"v1={_hmac(b, SIGNING_SECRET, now)}")),
    WebhookCase("timestamp with 5000 digits", 400, _with_header(lambda b, now: f"t={'9' * 5000},v1=00")),
    WebhookCase("v1 missing", 400, _with_header(lambda b, now: f"t={now}")),
    WebhookCase("only a v0 signature", 400, _with_header(lambda b, now: f"t={now},v0={_hmac(b, SIGNING_SECRET, now)}")),
    WebhookCase(
        "several v1, none valid",
        400,
        _with_header(lambda b, now: f"t={now},v1={_hmac(b, 'whsec_a', now)},v1={_hmac(b, 'whsec_b', now)}"),
    ),
    WebhookCase(
        "several v1, one valid (as Stripe sends while a secret rolls)",
        200,
        _with_header(
            lambda b, now: f"t={now},v1={_hmac(b, 'whsec_old', now)},v1={_hmac(b, SIGNING_SECRET, now)}", _foreign
        ),
    ),
    WebhookCase(
        "v1 in upper-case hex", 400, _with_header(lambda b, now: f"t={now},v1={_hmac(b, SIGNING_SECRET, now).upper()}")
    ),
    WebhookCase("v1 truncated", 400, _with_header(lambda b, now: f"t={now},v1={_hmac(b, SIGNING_SECRET, now)[:32]}")),
    WebhookCase(
        "non-ASCII bytes in the signature header",
        400,
        _with_header(lambda b, now: f"t={now},v1=".encode() + "é".encode("latin-1") * 64),
    ),
    WebhookCase(
        "a 20 KB signature header", 400, _with_header(lambda b, now: f"t={now}," + ",".join(["v1=" + "0" * 64] * 300))
    ),
    WebhookCase(
        "rotation: signed with the previous secret",
        200,
        lambda t: _signed(_foreign(t), secret=PREVIOUS_SECRET),
        rotation=True,
    ),
    WebhookCase("rotation: signed with the new secret", 200, lambda t: _signed(_foreign(t)), rotation=True),
    WebhookCase(
        "rotation over: signed with the retired secret", 400, lambda t: _signed(_foreign(t), secret=PREVIOUS_SECRET)
    ),
    WebhookCase("a real event replayed with its original, stale signature", 400, _at(-3600, _foreign)),
    # -- the body
    WebhookCase("malformed JSON", 400, lambda t: _signed(b'{"id": "evt_x", "type": ')),
    WebhookCase("a JSON array", 400, lambda t: _signed(b"[]")),
    WebhookCase("a JSON string", 400, lambda t: _signed(b'"payment_intent.succeeded"')),
    WebhookCase("JSON null", 400, lambda t: _signed(b"null")),
    WebhookCase("non-UTF-8 bytes", 400, lambda t: _signed(b'{"id": "evt_\xff\xfe", "type": "x"}')),
    WebhookCase("UTF-8 with a byte-order mark", 400, lambda t: _signed(b"\xef\xbb\xbf" + _json(_foreign(t)))),
    WebhookCase("base64 body, signature over the JSON", 400, _base64_body(sign_as_sent=False)),
    WebhookCase("base64 body, signed as sent", 400, _base64_body(sign_as_sent=True)),
    WebhookCase(
        "empty body",
        400,
        lambda t: Request(b"", {"Content-Type": "application/json", "Stripe-Signature": _signature(b"")}),
    ),
    WebhookCase("whitespace-only body", 400, lambda t: _signed(b"   \n")),
    WebhookCase("oversized body: 64 KiB + 1", 413, _padded_to(65537)),
    WebhookCase("body of exactly 64 KiB (the limit)", 200, _padded_to(65536)),
    WebhookCase("JSON nested 20,000 deep", 400, lambda t: _signed(_nested(20000))),
    # -- the request
    WebhookCase("GET", 404, _unsigned("application/json", method="GET")),
    WebhookCase("PUT", 404, _unsigned("application/json", method="PUT")),
    WebhookCase("DELETE", 404, _unsigned("application/json", method="DELETE")),
    WebhookCase("wrong path (trailing slash)", 404, _unsigned("application/json", path=WEBHOOK_PATH + "/")),
    WebhookCase("content type text/plain", 415, _unsigned("text/plain")),
    WebhookCase("content type form-encoded", 415, _unsigned("application/x-www-form-urlencoded")),
    WebhookCase("no content type", 415, _unsigned(None)),
    WebhookCase("content type with charset (as Stripe sends)", 200, _unsigned("application/json; charset=utf-8")),
    WebhookCase("content type in upper case", 200, _unsigned("APPLICATION/JSON")),
    WebhookCase("a query string on the URL", 200, _unsigned("application/json", path=WEBHOOK_PATH + "?from=stripe")),
    # -- the event
    WebhookCase("unknown event type", 200, lambda t: _signed(_event(t.waiting, "customer.created"))),
    WebhookCase(
        "charge.succeeded for one of our PaymentIntents",
        200,
        lambda t: _signed(
            _event(
                {
                    "id": "ch_rel",
                    "object": "charge",
                    "payment_intent": t.waiting["id"],
                    "metadata": t.waiting["metadata"],
                },
                "charge.succeeded",
            )
        ),
    ),
    WebhookCase("unknown PaymentIntent, not created here", 200, lambda t: _signed(_foreign(t))),
    WebhookCase(
        "PaymentIntent without metadata",
        200,
        lambda t: _signed(
            _foreign(t, data={"object": {"id": "pi_rel_bare", "object": "payment_intent", "status": "succeeded"}})
        ),
    ),
    WebhookCase(
        "PaymentIntent of another deployment (other app_id)",
        200,
        _waiting("payment_intent.succeeded", metadata={"app_id": "someone-else", "order_id": "x", "attempt": "1"}),
    ),
    WebhookCase("event from another Stripe account", 200, _connect_event),
    WebhookCase("event without data.object", 400, _without("data", "object")),
    WebhookCase("event without data", 400, _without("data")),
    WebhookCase("data is a list", 400, _waiting_event(data=[{"object": "x"}])),
    WebhookCase("data.object is a charge", 400, _waiting_event(data={"object": {"id": "ch_x", "object": "charge"}})),
    WebhookCase("thin event with a v1 event type", 400, _thin("payment_intent.succeeded")),
    WebhookCase("event id missing", 400, _without("id")),
    WebhookCase("created missing", 400, _without("created")),
    WebhookCase("created is a date string", 400, _waiting_event(created="2026-01-01T00:00:00Z")),
    WebhookCase("created is a boolean", 400, _waiting_event(created=True)),
    WebhookCase("created beyond any date (10**40)", 400, _waiting_event(created=10**40)),
    WebhookCase("PaymentIntent id is not a string", 400, _waiting("payment_intent.succeeded", id=12345)),
    WebhookCase("metadata is not an object", 400, _waiting("payment_intent.succeeded", metadata="ours")),
    WebhookCase(
        "metadata.attempt is not a number",
        400,
        lambda t: _signed(
            _event(
                t.waiting,
                "payment_intent.succeeded",
                object={"status": "succeeded", "metadata": {**t.waiting["metadata"], "attempt": "first"}},
            )
        ),
    ),
    WebhookCase(
        "last_payment_error is not an object",
        400,
        _waiting("payment_intent.payment_failed", status="requires_payment_method", last_payment_error="card declined"),
    ),
    WebhookCase("an event already applied, delivered again", 200, _finished_again),
    WebhookCase("an older event after a newer one", 200, _older_after_newer),
)
