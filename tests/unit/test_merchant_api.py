"""merchant_api.payment_status: what the merchant's backend (and its checkout page) learns about an order."""

from datetime import UTC, datetime
from typing import Any

import pytest

from payments.executions import ExecutionRef
from payments.merchant_api import payment_status
from payments.orders import parse_order
from payments.records import OrderRecords, PaymentRecords
from payments.webhooks import outcome_of
from tests.conftest import sample_order
from tests.unit._support import CREATED, payment_intent_event

NOW = datetime(2024, 5, 29, 12, 0, tzinfo=UTC)
DECLINE = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
           "message": "Your card was declined."}  # fmt: skip


class StripeNotAsked:
    def retrieve(self, payment_intent_id: str) -> Any:
        raise AssertionError("a settled order's status needs nothing from Stripe")


@pytest.fixture
def records(dynamodb: Any, tables: dict[str, Any]) -> tuple[OrderRecords, PaymentRecords]:
    return OrderRecords(dynamodb, "OrdersTable", "InventoryTable"), PaymentRecords(dynamodb, "PaymentsTable")


def record(payments: PaymentRecords, event_type: str, created: int, last_payment_error: dict | None) -> None:
    event = payment_intent_event(event_type, "pi_1", created=created, last_payment_error=last_payment_error)
    status = event_type.removeprefix("payment_intent.")
    payments.record_event(
        "pi_1", event_id=event["id"], created=created, status=status, rank=2 if status == "payment_failed" else 3,
        outcome=outcome_of(event["id"], event["data"]["object"], status), terminal=status == "canceled",
        order_id="order-1001", attempt=2, now=NOW,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("final_status", "last_payment_error", "last_failure"),
    [
        pytest.param("failed", DECLINE, "generic_decline: Your card was declined.", id="declined-then-cancelled"),
        pytest.param("timed_out", None, None, id="never-paid-then-cancelled"),
    ],
)
def test_an_ended_order_tells_the_last_decline_after_its_payment_intent_was_cancelled(
    records, final_status: str, last_payment_error: dict | None, last_failure: str | None
) -> None:
    # Given an order whose last attempt failed (or nobody paid), then was cancelled so that nobody pays it later
    orders, payments = records
    orders.claim(parse_order(sample_order()), ExecutionRef("arn:exec:1", "2024-05-29T12:00:00.000Z"), NOW)
    orders.begin_attempt("order-1001", 1, NOW)
    orders.record_payment_intent("order-1001", 1, "pi_1", NOW)
    if last_payment_error:
        record(payments, "payment_intent.payment_failed", CREATED, last_payment_error)
    record(payments, "payment_intent.canceled", CREATED + 1, last_payment_error)
    orders.append_status("order-1001", final_status, NOW)

    status = payment_status("order-1001", orders=orders, payments=payments, stripe=StripeNotAsked())

    assert status["status"] == final_status
    assert status.get("lastFailure") == last_failure
    assert status["payment"] == {"paymentIntentId": "pi_1", "status": "canceled"}
