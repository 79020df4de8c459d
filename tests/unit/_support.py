"""Helpers shared by the unit tests: Stripe-style signatures, Stripe events, a fake Step Functions client."""

import copy
import hashlib
import hmac
import itertools
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_runtime.fake_stripe import API_VERSION

APP_ID = "stripe-payments-test"
CREATED = 1_717_000_000  # a Stripe event's `created`, seconds since the epoch

_ids = itertools.count(1)
# Stripe's example objects: payment_intent, event, charge, payment_method (tests/fixtures/README.md).
STRIPE_EXAMPLES = json.loads((Path(__file__).parents[1] / "fixtures" / "stripe_openapi_fixtures3.json").read_text())[
    "resources"
]


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
    """A payment_intent.* event as Stripe delivers it: Stripe's own example event and PaymentIntent
    (tests/fixtures/), with this payment's id, status, amount, metadata and error."""
    if metadata == "default":
        metadata = {"app_id": APP_ID, "order_id": order_id, "attempt": attempt, "execution_id": "arn:exec"}
    status = status or {
        "payment_intent.succeeded": "succeeded",
        "payment_intent.payment_failed": "requires_payment_method",
        "payment_intent.canceled": "canceled",
        "payment_intent.processing": "processing",
        "payment_intent.requires_action": "requires_action",
        "payment_intent.amount_capturable_updated": "requires_capture",
    }.get(event_type, "requires_payment_method")
    payment_intent = copy.deepcopy(STRIPE_EXAMPLES["payment_intent"])
    payment_intent.update(
        id=payment_intent_id,
        client_secret=f"{payment_intent_id}_secret_example",
        amount=2500,
        amount_received=2500 if status == "succeeded" else 0,
        amount_capturable=2500 if status == "requires_capture" else 0,
        currency="usd",
        status=status,
        last_payment_error=last_payment_error,
        next_action={"type": "use_stripe_sdk"} if status == "requires_action" else None,
        canceled_at=created if status == "canceled" else None,
        cancellation_reason="abandoned" if status == "canceled" else None,
        created=created if isinstance(created, int) else CREATED,
    )
    if metadata is None:
        del payment_intent["metadata"]
    else:
        payment_intent["metadata"] = metadata
    event = copy.deepcopy(STRIPE_EXAMPLES["event"])
    event.update(
        id=event_id or unique("evt"),
        api_version=API_VERSION,
        type=event_type,
        created=created,
        pending_webhooks=1,
        data={"object": payment_intent},
    )
    return event


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
