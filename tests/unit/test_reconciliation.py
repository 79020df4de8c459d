"""The reconciler against the local Stripe over HTTP and the template's tables in moto.

Stripe is the truth of what was paid: the reconciler lists payment_intent.succeeded events
(docs.stripe.com/api/events/list) or retrieves an order's PaymentIntents, and repairs what the
Orders table has not caught up with, with the workflow's own conditional writes and keyed refunds.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_runtime.fake_stripe import FakeStripe
from payments.executions import ExecutionRef, ExecutionStatus
from payments.orders import Order, parse_order
from payments.reconciliation import Finding, Reconciler, needs_attention
from payments.records import OrderRecords
from payments.stripe_gateway import StripeGateway
from tests.conftest import SAMPLE_CUSTOMER, sample_order
from tests.unit._support import APP_ID, unique

API_KEY = "sk_test_reconcile"
NOW = datetime.now(UTC)
LATER = NOW + timedelta(hours=1)


class StubExecutions:
    """Executions.status for executions this test names; every other one has ended."""

    def __init__(self) -> None:
        self.running: set[str] = set()

    def status(self, execution_arn: str) -> ExecutionStatus:
        return ExecutionStatus("RUNNING" if execution_arn in self.running else "FAILED", "NeedsAttention")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, async_settle_seconds=None) as server:
        server.add_customer(SAMPLE_CUSTOMER)
        yield server


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway.connect(API_KEY, fake.url, network_retries=0, app_id=APP_ID)


@pytest.fixture
def orders(dynamodb: Any, tables: dict[str, Any]) -> OrderRecords:
    for sku in ("MUG-BLUE", "TEA-EARL"):
        tables["InventoryTable"].put_item(Item={"sku": sku, "available": 10})
    return OrderRecords(dynamodb, "OrdersTable", "InventoryTable")


@pytest.fixture
def executions() -> StubExecutions:
    return StubExecutions()


@pytest.fixture
def notices() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def reconciler(gateway, orders, executions, notices) -> Reconciler:
    return Reconciler(
        stripe=gateway, orders=orders, executions=executions,  # type: ignore[arg-type]
        notify=lambda kind, order, details: notices.append((kind, order.order_id)), grace_seconds=600,
    )  # fmt: skip


def paid_order(gateway: StripeGateway, orders: OrderRecords, *, bound: bool = True) -> tuple[Order, str]:
    """An order whose attempt 1 was paid at Stripe (and, if `bound`, recorded), then left by its execution."""
    order = parse_order(sample_order(orderId=unique("order")))
    orders.claim(order, ExecutionRef(f"arn:exec:{order.order_id}", "2026-11-30T10:00:00Z"), NOW)
    orders.begin_attempt(order.order_id, 1, NOW)
    payment_intent = gateway.create_payment_intent(order, 1, f"arn:exec:{order.order_id}")
    if bound:
        orders.record_payment_intent(order.order_id, 1, payment_intent.id, NOW)
    return order, payment_intent.id


def refunds_of(fake: FakeStripe, payment_intent_id: str) -> list[dict[str, Any]]:
    return [r for r in fake.refunds.values() if r["payment_intent"] == payment_intent_id]


def test_a_paid_order_its_execution_left_behind_is_fulfilled_once(reconciler, gateway, orders, notices, tables):
    # Given a paid order whose execution ended NeedsAttention before FulfilOrder
    order, payment_intent_id = paid_order(gateway, orders)

    first = reconciler.payment_intent(payment_intent_id, LATER)
    again = reconciler.payment_intent(payment_intent_id, LATER)

    assert (first, again) == (Finding.FULFILLED, Finding.SETTLED)
    record = orders.get(order.order_id)
    assert (record["status"], record["paymentIntentId"]) == ("fulfilled", payment_intent_id)
    assert [e.get("by") for e in record["history"] if e["status"] == "paid"] == ["reconciler"]
    assert tables["InventoryTable"].get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"] == 8
    assert notices == [("receipt", order.order_id)]


def test_a_payment_whose_execution_still_runs_is_left_to_it(reconciler, gateway, orders, executions, notices):
    order, payment_intent_id = paid_order(gateway, orders)
    executions.running.add(f"arn:exec:{order.order_id}")

    assert reconciler.payment_intent(payment_intent_id, LATER) is Finding.IN_FLIGHT
    assert orders.get(order.order_id)["status"] == "payment_requested"
    assert notices == []


def test_a_payment_younger_than_the_grace_period_is_left_to_its_execution(reconciler, gateway, orders):
    order, payment_intent_id = paid_order(gateway, orders)
    payment_intent = gateway.retrieve(payment_intent_id)

    assert reconciler.payment(payment_intent, int(LATER.timestamp()) - 60, LATER) is Finding.IN_FLIGHT
    assert orders.get(order.order_id)["status"] == "payment_requested"


def test_a_paid_order_without_stock_is_refunded_not_fulfilled(reconciler, gateway, orders, fake, tables, notices):
    order, payment_intent_id = paid_order(gateway, orders)
    tables["InventoryTable"].put_item(Item={"sku": "TEA-EARL", "available": 0})

    assert reconciler.payment_intent(payment_intent_id, LATER) is Finding.REFUNDED

    assert len(refunds_of(fake, payment_intent_id)) == 1
    assert orders.get(order.order_id)["status"] == "refunded"
    assert notices == [("refunded", order.order_id)]
    assert reconciler.payment_intent(payment_intent_id, LATER) is Finding.SETTLED
    assert len(refunds_of(fake, payment_intent_id)) == 1


def test_an_unrecorded_payment_of_the_attempt_is_bound_then_fulfilled(reconciler, gateway, orders):
    # Given CreatePaymentIntent's answer was lost before it recorded the PaymentIntent, and the execution died
    order, payment_intent_id = paid_order(gateway, orders, bound=False)

    assert reconciler.payment_intent(payment_intent_id, LATER) is Finding.FULFILLED
    assert orders.get(order.order_id)["attempts"]["1"]["paymentIntentId"] == payment_intent_id


def test_a_second_payment_for_a_fulfilled_order_is_refunded(reconciler, gateway, orders, fake):
    # Given an order fulfilled with its own PaymentIntent, and a second one paid for it (a key Stripe forgot)
    order, first = paid_order(gateway, orders)
    assert reconciler.payment_intent(first, LATER) is Finding.FULFILLED
    second = gateway.create_payment_intent(order, 1, "arn:exec:other", key_generation=2).id

    assert reconciler.payment_intent(second, LATER) is Finding.STRAY_REFUNDED

    assert (len(refunds_of(fake, first)), len(refunds_of(fake, second))) == (0, 1)
    record = orders.get(order.order_id)
    assert (record["status"], record["paymentIntentId"]) == ("fulfilled", first)
    assert record["history"][-1]["status"] == "stray_payment_refunded"


def test_a_payment_that_is_not_the_attempts_is_refunded_before_fulfilment(reconciler, gateway, orders, fake):
    order, bound = paid_order(gateway, orders)
    stray = gateway.create_payment_intent(order, 1, "arn:exec:other", key_generation=2).id

    assert reconciler.payment_intent(stray, LATER) is Finding.STRAY_REFUNDED
    assert len(refunds_of(fake, stray)) == 1
    assert orders.get(order.order_id)["status"] == "payment_requested"


def test_a_payment_for_an_order_we_never_recorded_is_refunded(reconciler, gateway, fake):
    order = parse_order(sample_order(orderId=unique("order")))
    payment_intent_id = gateway.create_payment_intent(order, 1, "arn:exec:gone").id

    assert reconciler.payment_intent(payment_intent_id, LATER) is Finding.STRAY_REFUNDED
    assert len(refunds_of(fake, payment_intent_id)) == 1


def test_an_unpaid_payment_intent_is_not_touched(reconciler, gateway, orders, fake):
    order = parse_order(sample_order(orderId=unique("order"), paymentMethod=None))
    payment_intent_id = gateway.create_payment_intent(order, 1, "arn:exec").id

    assert reconciler.payment_intent(payment_intent_id, LATER) is None
    assert fake.payment_intents[payment_intent_id]["status"] == "requires_payment_method"


def test_the_sweep_finds_every_orphan_among_recent_payments(reconciler, gateway, orders, fake, executions):
    # Given, among this deployment's recent payments: two orphaned, one in flight, one already fulfilled
    orphans = [paid_order(gateway, orders) for _ in range(2)]
    running, _ = paid_order(gateway, orders)
    executions.running.add(f"arn:exec:{running.order_id}")
    _, settled = paid_order(gateway, orders)
    assert reconciler.payment_intent(settled, LATER) is Finding.FULFILLED
    # and a payment of another deployment on the same Stripe account
    other = StripeGateway.connect(API_KEY, fake.url, network_retries=0, app_id="another-stack")
    other.create_payment_intent(parse_order(sample_order(orderId=unique("order"))), 1, "arn:exec:theirs")

    found = reconciler.sweep(since=int(NOW.timestamp()) - 3600, now=LATER)

    assert found[Finding.FULFILLED] >= 2
    assert found[Finding.IN_FLIGHT] >= 1
    for order, _ in orphans:
        assert orders.get(order.order_id)["status"] == "fulfilled"
    assert orders.get(running.order_id)["status"] == "payment_requested"
    assert reconciler.sweep(since=int(NOW.timestamp()) - 3600, now=LATER)[Finding.FULFILLED] == 0


def test_the_order_whose_execution_ended_is_checked_attempt_by_attempt(reconciler, gateway, orders):
    order, _ = paid_order(gateway, orders)

    assert reconciler.order(order.order_id, LATER) == {Finding.FULFILLED: 1}
    assert reconciler.order(order.order_id, LATER) == {Finding.SETTLED: 1}
    assert reconciler.order("order-never-seen", LATER) == {}


@pytest.mark.parametrize(
    ("status", "error", "alarmed"),
    [
        ("FAILED", "NeedsAttention", True),
        ("FAILED", "States.Runtime", True),
        ("TIMED_OUT", None, True),
        ("ABORTED", None, True),
        ("FAILED", "PaymentFailed", False),
        ("FAILED", "DuplicateOrder", False),
        ("FAILED", "OutOfStock", False),
        ("SUCCEEDED", None, False),
    ],
)
def test_an_execution_end_is_alarmed_unless_it_is_the_business_answer(status, error, alarmed) -> None:
    assert needs_attention(status, error) is alarmed
