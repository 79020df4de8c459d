"""Helpers shared by the unit tests: Stripe-style signatures, Stripe events, a fake Step Functions client."""

import hashlib
import hmac
import itertools
import json
from typing import Any

from botocore.exceptions import ClientError

APP_ID = "stripe-payments-test"
CREATED = 1_717_000_000  # a Stripe event's `created`, seconds since the epoch

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def stripe_signature(payload: bytes | str, secret: str, timestamp: int, *, extra_v1: tuple[str, ...] = ()) -> str:
    """The Stripe-Signature header Stripe sends: HMAC-SHA256 over f"{t}.{payload}" with the signing secret."""
    body = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in extra_v1), f"v1={digest}"])


def payment_intent_event(
    event_type: str,
    payment_intent_id: str,
    *,
    status: str | None = None,
    created: Any = CREATED,
    event_id: str | None = None,
    metadata: Any = "default",
    order_id: str = "order-1001",
    attempt: str = "1",
    last_payment_error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A realistic payment_intent.* event as Stripe delivers it."""
    if metadata == "default":
        metadata = {"app_id": APP_ID, "order_id": order_id, "attempt": attempt, "execution_id": "arn:exec"}
    status = status or {
        "payment_intent.succeeded": "succeeded",
        "payment_intent.payment_failed": "requires_payment_method",
        "payment_intent.canceled": "canceled",
        "payment_intent.processing": "processing",
        "payment_intent.requires_action": "requires_action",
    }.get(event_type, "requires_payment_method")
    payment_intent: dict[str, Any] = {
        "id": payment_intent_id,
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "status": status,
        "last_payment_error": last_payment_error,
        "livemode": False,
    }
    if metadata is not None:
        payment_intent["metadata"] = metadata
    return {
        "id": event_id or unique("evt"),
        "object": "event",
        "api_version": "2024-06-20",
        "type": event_type,
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": payment_intent},
    }


def client_error(code: str, operation: str = "SendTaskSuccess", http_status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} (test)"}, "ResponseMetadata": {"HTTPStatusCode": http_status}},
        operation,
    )


class FakeStepFunctions:
    """Records SendTaskSuccess calls. A token can be used once; a reused token answers TaskTimedOut,
    as Step Functions does. `fail_next` makes the next calls raise the given error codes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.fail_next: list[str] = []
        self._spent: set[str] = set()

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        parsed = json.loads(output)
        self.calls.append((taskToken, parsed))
        if self.fail_next:
            raise client_error(self.fail_next.pop(0))
        if taskToken in self._spent:
            raise client_error("TaskTimedOut")
        self._spent.add(taskToken)
        self.resumed.append((taskToken, parsed))
        return {}
