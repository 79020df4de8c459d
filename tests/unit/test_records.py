"""records: conditional writes over the template's tables in moto."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from payments.errors import AwsUnavailable, DuplicateOrder, OrderNotFound, OutOfStock, PaymentNotBound
from payments.executions import ExecutionRef
from payments.orders import Order, parse_order
from payments.records import OrderRecords, PaymentRecords
from tests.conftest import sample_order
from tests.unit._support import client_error

NOW = datetime(2024, 5, 29, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
EXECUTION = ExecutionRef("arn:exec:1", "2024-05-29T12:00:00.000Z")


@pytest.fixture
def payments(dynamodb: Any, tables: dict[str, Any]) -> PaymentRecords:
    return PaymentRecords(dynamodb, "PaymentsTable")


@pytest.fixture
def orders(dynamodb: Any, tables: dict[str, Any]) -> OrderRecords:
    return OrderRecords(dynamodb, "OrdersTable", "InventoryTable")


@pytest.fixture
def order() -> Order:
    return parse_order(sample_order())  # 2 x MUG-BLUE, 1 x TEA-EARL


def stock(tables: dict[str, Any], **available: int) -> None:
    for sku, count in available.items():
        tables["InventoryTable"].put_item(Item={"sku": sku.replace("_", "-"), "available": count})


def available(tables: dict[str, Any], sku: str) -> int | None:
    item = tables["InventoryTable"].get_item(Key={"sku": sku}, ConsistentRead=True).get("Item")
    return None if item is None else int(item["available"])


def received(orders: OrderRecords, order: Order, payment_intent_id: str = "pi_paid") -> None:
    """An order claimed by EXECUTION whose first attempt is bound to `payment_intent_id`."""
    orders.claim(order, EXECUTION, NOW)
    orders.begin_attempt(order.order_id, 1, NOW)
    orders.record_payment_intent(order.order_id, 1, payment_intent_id, NOW)


def record_succeeded(payments: PaymentRecords, pi: str, event_id: str = "evt_ok", created: int = 100) -> None:
    payments.record_event(
        pi, event_id=event_id, created=created, status="succeeded", rank=3,
        outcome={"status": "succeeded", "paymentIntentId": pi, "eventId": event_id}, terminal=True,
        order_id="order-1001", attempt=1, now=NOW,
    )  # fmt: skip


# --- PaymentRecords ---------------------------------------------------------------------------


def test_record_payment_intent_creates_the_item(payments: PaymentRecords) -> None:
    payments.record_payment_intent("pi_r1", "order-1001", 2, "arn:exec:1", "requires_action", NOW)

    assert payments.get("pi_r1") == {
        "paymentIntentId": "pi_r1", "orderId": "order-1001", "attempt": 2, "executionId": "arn:exec:1",
        "status": "requires_action", "createdAt": NOW.isoformat(), "updatedAt": NOW.isoformat(),
    }  # fmt: skip


def test_record_payment_intent_does_not_clobber_an_earlier_webhook_status(payments: PaymentRecords) -> None:
    # Given the succeeded webhook arrived before CreatePaymentIntent wrote its record
    record_succeeded(payments, "pi_r2")

    payments.record_payment_intent("pi_r2", "order-1001", 1, "arn:exec:1", "requires_confirmation", LATER)

    item = payments.get("pi_r2")
    assert item is not None
    assert item["status"] == "succeeded"
    assert item["outcome"]["status"] == "succeeded"
    assert item["executionId"] == "arn:exec:1"


def test_record_payment_intent_retry_keeps_created_at(payments: PaymentRecords) -> None:
    payments.record_payment_intent("pi_r3", "order-1001", 1, "arn:exec:1", "requires_action", NOW)
    payments.record_payment_intent("pi_r3", "order-1001", 1, "arn:exec:1", "requires_action", LATER)

    item = payments.get("pi_r3")
    assert (item["createdAt"], item["updatedAt"]) == (NOW.isoformat(), LATER.isoformat())  # type: ignore[index]


def test_store_task_token_returns_the_item_with_an_early_outcome(payments: PaymentRecords) -> None:
    record_succeeded(payments, "pi_r4")

    item = payments.store_task_token("pi_r4", "token-r4", 1_900_000_000, NOW)

    assert item["taskToken"] == "token-r4"
    assert item["expiresAt"] == 1_900_000_000
    assert item["outcome"]["eventId"] == "evt_ok"


def test_record_status_processing_removes_the_stored_outcome(payments: PaymentRecords) -> None:
    # Given a failure outcome (non-terminal), after which Stripe says the PaymentIntent is processing
    payments.record_event(
        "pi_r5", event_id="evt_fail", created=100, status="payment_failed", rank=2,
        outcome={"status": "payment_failed"}, terminal=False, order_id="order-1001", attempt=1, now=NOW,
    )  # fmt: skip

    payments.record_status("pi_r5", "processing", LATER)

    item = payments.get("pi_r5")
    assert item is not None
    assert item["status"] == "processing"
    assert "outcome" not in item
    assert "outcomeEventId" not in item
    # so the next token writer waits instead of resuming with the stale failure
    assert "outcome" not in payments.store_task_token("pi_r5", "token-again", 1_900_000_000, LATER)


def test_record_status_other_than_processing_keeps_the_outcome(payments: PaymentRecords) -> None:
    payments.record_event(
        "pi_r6", event_id="evt_fail", created=100, status="payment_failed", rank=2,
        outcome={"status": "payment_failed"}, terminal=False, order_id="order-1001", attempt=1, now=NOW,
    )  # fmt: skip

    payments.record_status("pi_r6", "canceled", LATER)

    item = payments.get("pi_r6")
    assert (item["status"], item["outcome"]["status"]) == ("canceled", "payment_failed")  # type: ignore[index]


def test_record_status_for_unknown_payment_intent_writes_nothing(payments: PaymentRecords, tables) -> None:
    with pytest.raises(ClientError) as caught:
        payments.record_status("pi_unknown", "canceled", NOW)

    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert tables["PaymentsTable"].scan()["Items"] == []


def test_record_status_does_not_erase_a_terminal_outcome_recorded_by_a_webhook(payments: PaymentRecords) -> None:
    # Given settle read 'processing' from Stripe, then the succeeded webhook was recorded
    record_succeeded(payments, "pi_r7")

    # When settle records the (now older) status it read
    payments.record_status("pi_r7", "processing", LATER)

    # Then the terminal outcome stands, and the next token writer resumes with it
    item = payments.store_task_token("pi_r7", "token-next", 1_900_000_000, LATER)
    assert item.get("outcome", {}).get("status") == "succeeded"
    assert item["status"] == "succeeded"


def test_record_event_refuses_older_and_returns_the_item_as_it_stands(payments: PaymentRecords) -> None:
    record_succeeded(payments, "pi_r8", created=200)

    applied, item = payments.record_event(
        "pi_r8", event_id="evt_old", created=100, status="processing", rank=1, outcome=None, terminal=False,
        order_id="order-1001", attempt=1, now=LATER,
    )  # fmt: skip

    assert applied is False
    assert item is not None
    assert (item["status"], item["lastEventId"]) == ("succeeded", "evt_ok")


class _ThrottledDynamoDB:
    def update_item(self, **_: Any) -> None:
        raise client_error("ProvisionedThroughputExceededException", "UpdateItem")

    def get_item(self, **_: Any) -> None:
        raise client_error("InternalServerError", "GetItem", http_status=500)

    def put_item(self, **_: Any) -> None:
        raise client_error("ThrottlingException", "PutItem")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda p: p.get("pi_1"), id="get"),
        pytest.param(lambda p: p.record_status("pi_1", "canceled", NOW), id="record-status"),
        pytest.param(lambda p: p.store_task_token("pi_1", "t", 1, NOW), id="store-task-token"),
        pytest.param(
            lambda p: p.record_event(
                "pi_1", event_id="e", created=1, status="processing", rank=1, outcome=None, terminal=False,
                order_id="o", attempt=1, now=NOW,
            ),
            id="record-event",
        ),
    ],
)  # fmt: skip
def test_throttled_payments_table_raises_aws_unavailable(call) -> None:
    with pytest.raises(AwsUnavailable, match="payments table"):
        call(PaymentRecords(_ThrottledDynamoDB(), "PaymentsTable"))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda o, order: o.claim(order, EXECUTION, NOW), id="claim"),
        pytest.param(lambda o, order: o.begin_attempt("order-1001", 1, NOW), id="begin-attempt"),
        pytest.param(lambda o, order: o.append_status("order-1001", "paid", NOW), id="append-status"),
        pytest.param(lambda o, order: o.get("order-1001"), id="get"),
    ],
)
def test_throttled_orders_table_raises_aws_unavailable(call, order: Order) -> None:
    with pytest.raises(AwsUnavailable, match="orders"):
        call(OrderRecords(_ThrottledDynamoDB(), "OrdersTable", "InventoryTable"), order)


# --- OrderRecords -----------------------------------------------------------------------------


def test_claim_writes_the_order_with_its_execution_and_history(orders: OrderRecords, order: Order) -> None:
    orders.claim(order, EXECUTION, NOW)

    item = orders.get("order-1001")
    assert item is not None
    assert (item["status"], item["executionId"], item["executionStartedAt"]) == (
        "received", "arn:exec:1", EXECUTION.started_at,
    )  # fmt: skip
    assert (item["amount"], item["attempts"]) == (2500, {})
    assert item["history"] == [{"status": "received", "at": NOW.isoformat()}]
    assert item["items"][0] == {"sku": "MUG-BLUE", "quantity": 2, "unitAmount": 1000}


def test_claim_again_by_the_same_execution_is_a_retry(orders: OrderRecords, order: Order) -> None:
    orders.claim(order, EXECUTION, NOW)

    orders.claim(order, EXECUTION, LATER)  # a retried AcceptOrder

    item = orders.get("order-1001")
    assert item is not None
    assert item["createdAt"] == NOW.isoformat()
    assert len(item["history"]) == 1


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(ExecutionRef("arn:exec:other-name", EXECUTION.started_at), id="another-name"),
        # Step Functions forgets an execution after 90 days; the same name then starts a new one
        pytest.param(ExecutionRef("arn:exec:1", "2024-09-01T08:00:00.000Z"), id="name-reused-later"),
    ],
)
def test_claim_by_another_execution_is_a_duplicate_and_changes_nothing(
    orders: OrderRecords, order: Order, other: ExecutionRef
) -> None:
    received(orders, order)
    before = orders.get("order-1001")

    with pytest.raises(DuplicateOrder, match="held by execution arn:exec:1"):
        orders.claim(order, other, LATER)

    assert orders.get("order-1001") == before


def test_begin_attempt_once_then_returns_the_attempt_as_recorded(orders: OrderRecords, order: Order) -> None:
    orders.claim(order, EXECUTION, NOW)

    first = orders.begin_attempt("order-1001", 1, NOW)
    again = orders.begin_attempt("order-1001", 1, LATER)  # a retry, a park or a redrive

    assert first is None
    assert again == {"requestedAt": NOW.isoformat(), "lastRequestAt": NOW.isoformat(), "keyGeneration": 1}
    item = orders.get("order-1001")
    assert item is not None
    assert [entry["status"] for entry in item["history"]] == ["received", "payment_requested"]


def test_begin_attempt_of_an_unknown_order_raises(orders: OrderRecords) -> None:
    with pytest.raises(OrderNotFound):
        orders.begin_attempt("order-404", 1, NOW)


def test_an_attempt_is_bound_to_one_payment_intent(orders: OrderRecords, order: Order) -> None:
    orders.claim(order, EXECUTION, NOW)
    orders.begin_attempt("order-1001", 1, NOW)

    assert orders.record_payment_intent("order-1001", 1, "pi_first", NOW) == "pi_first"
    assert orders.record_payment_intent("order-1001", 1, "pi_first", LATER) == "pi_first"
    assert orders.record_payment_intent("order-1001", 1, "pi_second", LATER) == "pi_first"
    orders.note_request("order-1001", 1, 2, LATER)

    attempt = orders.begin_attempt("order-1001", 1, LATER)
    assert attempt == {
        "requestedAt": NOW.isoformat(), "lastRequestAt": LATER.isoformat(), "keyGeneration": 2,
        "paymentIntentId": "pi_first",
    }  # fmt: skip


def test_append_status_appends_to_the_history(orders: OrderRecords, order: Order) -> None:
    orders.claim(order, EXECUTION, NOW)

    orders.append_status("order-1001", "payment_requested", LATER, attempt=1, paymentIntentId="pi_1", reason=None)

    item = orders.get("order-1001")
    assert item is not None
    assert item["status"] == "payment_requested"
    assert item["updatedAt"] == LATER.isoformat()
    assert item["history"] == [
        {"status": "received", "at": NOW.isoformat()},
        {"status": "payment_requested", "at": LATER.isoformat(), "attempt": 1, "paymentIntentId": "pi_1"},
    ]


def test_append_status_for_unknown_order_raises_and_creates_nothing(orders: OrderRecords, tables) -> None:
    with pytest.raises(OrderNotFound, match="order-404"):
        orders.append_status("order-404", "refunded", NOW)

    assert tables["OrdersTable"].scan()["Items"] == []


def test_fulfil_decrements_every_sku_once(orders: OrderRecords, order: Order, tables) -> None:
    received(orders, order)
    stock(tables, MUG_BLUE=5, TEA_EARL=3)

    assert orders.fulfil(order, 1, "pi_paid", LATER) is True

    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (3, 2)
    item = orders.get("order-1001")
    assert item is not None
    assert (item["status"], item["paymentIntentId"], item["fulfilledAt"]) == ("fulfilled", "pi_paid", LATER.isoformat())
    assert [entry["status"] for entry in item["history"]] == ["received", "payment_requested", "paid", "fulfilled"]


def test_fulfil_again_returns_false_and_leaves_stock_alone(orders: OrderRecords, order: Order, tables) -> None:
    # Given a fulfilled order, and a retried FulfilOrder step
    received(orders, order)
    stock(tables, MUG_BLUE=5, TEA_EARL=3)
    orders.fulfil(order, 1, "pi_paid", LATER)

    assert orders.fulfil(order, 1, "pi_paid", LATER) is False
    assert orders.fulfil(order, 1, "pi_paid", LATER) is False

    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (3, 2)
    assert [entry["status"] for entry in orders.get("order-1001")["history"]] == [  # type: ignore[index]
        "received", "payment_requested", "paid", "fulfilled",
    ]  # fmt: skip


def test_fulfil_exact_stock_reaches_zero(orders: OrderRecords, order: Order, tables) -> None:
    received(orders, order)
    stock(tables, MUG_BLUE=2, TEA_EARL=1)

    assert orders.fulfil(order, 1, "pi_paid", LATER) is True
    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (0, 0)


def test_fulfil_is_all_or_nothing_when_one_line_lacks_stock(orders: OrderRecords, order: Order, tables) -> None:
    # Given enough mugs but no tea
    received(orders, order)
    stock(tables, MUG_BLUE=5, TEA_EARL=0)

    with pytest.raises(OutOfStock) as caught:
        orders.fulfil(order, 1, "pi_paid", LATER)

    assert caught.value.sku == "TEA-EARL"
    assert "TEA-EARL" in str(caught.value)
    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (5, 0)
    item = orders.get("order-1001")
    assert item is not None
    assert item["status"] == "payment_requested"
    assert "fulfilledAt" not in item


def test_fulfil_names_the_first_sku_short_of_stock(orders: OrderRecords, order: Order, tables) -> None:
    received(orders, order)
    stock(tables, MUG_BLUE=1, TEA_EARL=3)  # two mugs ordered

    with pytest.raises(OutOfStock) as caught:
        orders.fulfil(order, 1, "pi_paid", LATER)

    assert caught.value.sku == "MUG-BLUE"
    assert available(tables, "TEA-EARL") == 3


def test_fulfil_unknown_sku_is_out_of_stock(orders: OrderRecords, order: Order, tables) -> None:
    received(orders, order)
    stock(tables, MUG_BLUE=5)  # TEA-EARL has no inventory item

    with pytest.raises(OutOfStock) as caught:
        orders.fulfil(order, 1, "pi_paid", LATER)

    assert caught.value.sku == "TEA-EARL"
    assert available(tables, "MUG-BLUE") == 5
    assert available(tables, "TEA-EARL") is None  # not created by the failed decrement


def test_fulfil_unknown_order_raises_order_not_found(orders: OrderRecords, order: Order, tables) -> None:
    stock(tables, MUG_BLUE=5, TEA_EARL=3)

    with pytest.raises(OrderNotFound):
        orders.fulfil(order, 1, "pi_paid", LATER)

    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (5, 3)


def test_fulfil_refuses_a_payment_intent_that_is_not_the_attempts(orders: OrderRecords, order: Order, tables) -> None:
    # Given attempt 1 is bound to pi_paid, and another PaymentIntent of the same order succeeded
    received(orders, order, payment_intent_id="pi_paid")
    stock(tables, MUG_BLUE=5, TEA_EARL=3)

    with pytest.raises(PaymentNotBound, match="pi_stray is not the one recorded"):
        orders.fulfil(order, 1, "pi_stray", LATER)

    assert (available(tables, "MUG-BLUE"), available(tables, "TEA-EARL")) == (5, 3)
    assert "fulfilledAt" not in orders.get("order-1001")  # type: ignore[operator]
