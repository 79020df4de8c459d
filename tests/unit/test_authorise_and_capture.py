"""CaptureMethod manual: authorise, reserve the stock, capture, fulfil; or release. Against the local Stripe over
HTTP on a stopped clock the test moves, and the template's tables in moto.

Stripe's behaviour relied on (docs.stripe.com/payments/place-a-hold-on-a-payment-method, and
docs.stripe.com/api/payment_intents/capture): a card PaymentIntent with
`payment_method_options[card][capture_method]=manual` stops at `requires_capture`; capture moves it to
`succeeded`, and Stripe refuses to capture it twice; cancel in `requires_capture` releases the hold, with no
Refund (since API 2025-03-31.basil); an authorisation not captured by the charge's
`payment_method_details.card.capture_before` ends `canceled` with `cancellation_reason: "expired"`; bank
debits cannot be captured later, so only the card option is manual.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local_runtime.fake_stripe import Clock, FakeStripe
from payments import steps
from payments.errors import AuthorizationExpired, OutOfStock, PaymentNotBound, PaymentNotConfirmed
from payments.executions import ExecutionRef, ExecutionStatus
from payments.orders import Order, parse_order
from payments.reconciliation import Finding, Reconciler
from payments.records import OrderRecords, PaymentRecords
from payments.stripe_gateway import StripeGateway
from tests.conftest import SAMPLE_CUSTOMER, sample_order
from tests.unit._support import APP_ID, unique

API_KEY = "sk_test_capture"
T0 = 1_800_000_000
DAY = 24 * 3600
DEADLINE = T0 + 7 * DAY  # capture_before of a card authorised at T0, as ReserveStock reads it


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, async_settle_seconds=None, clock=Clock(stopped_at=T0)) as server:
        server.add_customer(SAMPLE_CUSTOMER)
        yield server


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway.connect(API_KEY, fake.url, network_retries=0, app_id=APP_ID, capture_method="manual")


@pytest.fixture
def orders(dynamodb: Any, tables: dict[str, Any]) -> OrderRecords:
    for sku in ("MUG-BLUE", "TEA-EARL"):
        tables["InventoryTable"].put_item(Item={"sku": sku, "available": 10})
    return OrderRecords(dynamodb, "OrdersTable", "InventoryTable")


def now(fake: FakeStripe) -> datetime:
    return datetime.fromtimestamp(fake.clock.now(), UTC)


def stock(tables: dict[str, Any], sku: str = "MUG-BLUE") -> int:
    return int(tables["InventoryTable"].get_item(Key={"sku": sku})["Item"]["available"])


def authorised(fake: FakeStripe, gateway: StripeGateway, orders: OrderRecords, pm: str = "pm_card_visa") -> tuple[
    Order, str
]:  # fmt: skip
    """An order whose first attempt is bound to a PaymentIntent the customer's card authorised."""
    order = parse_order(sample_order(orderId=unique("order"), paymentMethod=pm))
    orders.claim(order, ExecutionRef(f"arn:exec:{order.order_id}", "2027-01-15T08:00:00Z"), now(fake))
    orders.begin_attempt(order.order_id, 1, now(fake))
    payment_intent = gateway.create_payment_intent(order, 1, f"arn:exec:{order.order_id}")
    orders.record_payment_intent(order.order_id, 1, payment_intent.id, now(fake))
    return order, payment_intent.id


def captures(fake: FakeStripe, payment_intent_id: str) -> int:
    """Captures Stripe made: a capture it refused (payment_intent_unexpected_state) took nothing."""
    return sum(
        1 for r in fake.requests if r.path == f"/v1/payment_intents/{payment_intent_id}/capture" and r.status == 200
    )


def expired(message: str) -> dict[str, Any]:
    return {"Error": "AuthorizationExpired", "Cause": f'{{"errorMessage": "{message}"}}'}


def test_a_card_is_authorised_not_charged_and_a_bank_debit_is_charged(fake, gateway, orders) -> None:
    _, card = authorised(fake, gateway, orders)
    _, debit = authorised(fake, gateway, orders, pm="pm_success_de")

    assert fake.payment_intents[card]["status"] == "requires_capture"
    assert fake.payment_intents[card]["amount_received"] == 0
    assert gateway.authorization(card).capture_before == T0 + 7 * DAY
    # A SEPA debit cannot be captured later: it takes the automatic path (and its compensation, a refund)
    assert fake.payment_intents[debit]["status"] == "processing"


def test_reserve_capture_fulfil_takes_the_stock_once_and_the_money_once(fake, gateway, orders, tables) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)

    reserved = steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))  # a retry
    assert (reserved, stock(tables)) == ({"reserved": True, "captureBefore": T0 + 7 * DAY}, 8)
    assert orders.get(order.order_id)["reservationExpiresAt"] == T0 + 7 * DAY

    before = len(fake.requests)
    captured = steps.capture_payment(payment_intent_id, DEADLINE, stripe=gateway, now=now(fake))
    assert captured == {"status": "succeeded", "paymentIntentId": payment_intent_id, "attempt": 1}
    assert len(fake.requests) - before == 1  # the capture alone: no read first
    assert steps.capture_payment(payment_intent_id, DEADLINE, stripe=gateway, now=now(fake)) == captured
    assert fake.payment_intents[payment_intent_id]["amount_received"] == 2500
    assert captures(fake, payment_intent_id) == 1  # Stripe refused the retry's capture; the read said it is captured

    before = len(fake.requests)
    result = steps.fulfil_order(
        order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake), captured=captured
    )  # fmt: skip
    assert result == {"fulfilled": True}
    assert len(fake.requests) == before  # the capture's answer was Stripe's word: no second read
    record = orders.get(order.order_id)
    assert (record["status"], record["paymentIntentId"], stock(tables)) == ("fulfilled", payment_intent_id, 8)


def test_fulfil_reads_stripe_unless_the_capture_proof_names_this_payment_intent(fake, gateway, orders, tables) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    # Not captured: a proof naming another PaymentIntent (or none) is no proof, and Stripe says requires_capture
    for proof in ({"paymentIntentId": "pi_other", "attempt": 1}, None, {}):
        with pytest.raises(PaymentNotConfirmed, match="requires_capture"):
            steps.fulfil_order(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake), captured=proof)
    assert (orders.get(order.order_id)["status"], stock(tables)) == ("reserved", 8)


def test_out_of_stock_releases_the_authorisation_charges_nothing_and_refunds_nothing(
    fake, gateway, orders, tables
) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)
    tables["InventoryTable"].put_item(Item={"sku": "TEA-EARL", "available": 0})

    with pytest.raises(OutOfStock) as out_of_stock:
        steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    error = {"Error": "OutOfStock", "Cause": f'{{"errorMessage": "{out_of_stock.value}"}}'}
    released = steps.release_authorization(
        order, payment_intent_id, error, stripe=gateway, orders=orders, now=now(fake)
    )  # fmt: skip

    assert released == {"status": "canceled", "reason": str(out_of_stock.value)}
    held = fake.payment_intents[payment_intent_id]
    assert (held["status"], held["amount_received"], captures(fake, payment_intent_id)) == ("canceled", 0, 0)
    assert not fake.refunds
    assert (stock(tables, "MUG-BLUE"), stock(tables, "TEA-EARL")) == (10, 0)  # nothing taken, nothing lost


def test_a_capture_too_close_to_the_deadline_releases_instead(fake, gateway, orders, tables) -> None:
    # Given the stock reserved, and then a long outage: the step runs again 40 minutes before capture_before
    order, payment_intent_id = authorised(fake, gateway, orders)
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    fake.clock.advance(7 * DAY - 40 * 60)

    with pytest.raises(AuthorizationExpired) as too_late:
        steps.capture_payment(payment_intent_id, DEADLINE, stripe=gateway, now=now(fake))
    steps.release_authorization(
        order, payment_intent_id, expired(str(too_late.value)), stripe=gateway, orders=orders, now=now(fake)
    )  # fmt: skip

    held = fake.payment_intents[payment_intent_id]
    assert (held["status"], held["cancellation_reason"], captures(fake, payment_intent_id)) == (
        "canceled", "abandoned", 0,
    )  # fmt: skip
    assert (stock(tables), orders.get(order.order_id)["status"]) == (10, "released")


def test_an_authorisation_that_expired_at_stripe_is_released_never_captured(fake, gateway, orders, tables) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    fake.clock.advance(7 * DAY + 1)  # Stripe let it lapse: canceled, cancellation_reason expired

    with pytest.raises(AuthorizationExpired, match=r"\(expired\)"):
        steps.capture_payment(payment_intent_id, DEADLINE, stripe=gateway, now=now(fake))
    released = steps.release_authorization(
        order, payment_intent_id, expired("lapsed"), stripe=gateway, orders=orders, now=now(fake)
    )  # fmt: skip

    assert released["status"] == "canceled"
    assert (stock(tables), captures(fake, payment_intent_id)) == (10, 0)


def test_a_failed_or_timed_out_attempt_never_cancels_an_authorisation(fake, gateway, orders, dynamodb) -> None:
    # Settling (after a timeout, or a stale failure) must not throw away the customer's authorised payment
    order, payment_intent_id = authorised(fake, gateway, orders)
    payments = PaymentRecords(dynamodb, "PaymentsTable")
    payments.record_payment_intent(payment_intent_id, order.order_id, 1, "arn:exec", "requires_capture", now(fake))

    settled = steps.settle_payment_intent(
        payment_intent_id, "timed out", stripe=gateway, payments=payments, now=now(fake)
    )  # fmt: skip

    assert settled["status"] == "requires_capture"
    assert fake.payment_intents[payment_intent_id]["status"] == "requires_capture"


def test_a_payment_intent_that_is_not_the_attempts_is_neither_reserved_nor_captured(fake, gateway, orders) -> None:
    order, _ = authorised(fake, gateway, orders)
    stray = gateway.create_payment_intent(order, 1, "arn:exec:other", key_generation=2).id

    with pytest.raises(PaymentNotBound):
        steps.reserve_stock(order, stray, stripe=gateway, orders=orders, now=now(fake))
    assert "reservedPaymentIntentId" not in orders.get(order.order_id)


# -- The reconciler: an authorised order its execution left behind ---------------------------------------------


class EndedExecutions:
    def __init__(self) -> None:
        self.running: set[str] = set()

    def status(self, execution_arn: str) -> ExecutionStatus:
        return ExecutionStatus("RUNNING" if execution_arn in self.running else "FAILED", "NeedsAttention")


@pytest.fixture
def notices() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def executions() -> EndedExecutions:
    return EndedExecutions()


@pytest.fixture
def reconciler(gateway, orders, executions, notices) -> Reconciler:
    return Reconciler(
        stripe=gateway, orders=orders, executions=executions,  # type: ignore[arg-type]
        notify=lambda kind, order, details: notices.append((kind, order.order_id)), grace_seconds=600,
    )  # fmt: skip


def test_the_reconciler_reserves_captures_and_fulfils_an_authorised_order_once(
    fake, gateway, orders, tables, reconciler, notices
) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)

    assert reconciler.order(order.order_id, now(fake)) == {Finding.FULFILLED: 1}
    assert reconciler.order(order.order_id, now(fake)) == {Finding.SETTLED: 1}

    assert fake.payment_intents[payment_intent_id]["status"] == "succeeded"
    assert (orders.get(order.order_id)["status"], stock(tables), captures(fake, payment_intent_id)) == (
        "fulfilled", 8, 1,
    )  # fmt: skip
    assert notices == [("receipt", order.order_id)]


def test_the_reconciler_finishes_an_order_captured_before_its_execution_died(
    fake, gateway, orders, tables, reconciler
) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    steps.capture_payment(payment_intent_id, DEADLINE, stripe=gateway, now=now(fake))

    assert reconciler.payment_intent(payment_intent_id, now(fake)) is Finding.FULFILLED
    assert stock(tables) == 8  # the reservation became the fulfilment: not taken twice


def test_the_reconciler_releases_an_authorised_order_out_of_stock(
    fake, gateway, orders, tables, reconciler, notices
) -> None:
    order, payment_intent_id = authorised(fake, gateway, orders)
    tables["InventoryTable"].put_item(Item={"sku": "TEA-EARL", "available": 0})

    assert reconciler.payment_intent(payment_intent_id, now(fake)) is Finding.RELEASED

    assert fake.payment_intents[payment_intent_id]["status"] == "canceled"
    assert not fake.refunds
    assert notices == [("out_of_stock", order.order_id)]


def test_the_sweep_finds_an_authorisation_left_behind_and_leaves_one_in_flight(
    fake, gateway, orders, executions, reconciler
) -> None:
    left, left_pi = authorised(fake, gateway, orders)
    running, running_pi = authorised(fake, gateway, orders)
    executions.running.add(f"arn:exec:{running.order_id}")
    fake.clock.advance(3600)  # older than the grace period

    found = reconciler.sweep(since=T0 - 60, now=now(fake))

    assert (found[Finding.FULFILLED], found[Finding.IN_FLIGHT]) == (1, 1)
    assert fake.payment_intents[left_pi]["status"] == "succeeded"
    assert fake.payment_intents[running_pi]["status"] == "requires_capture"
    # The capture's own succeeded event is settled on the next sweep, not fulfilled again
    assert reconciler.sweep(since=T0 - 60, now=now(fake))[Finding.FULFILLED] == 0


def test_a_stray_authorisation_is_released_not_captured(fake, gateway, orders, reconciler) -> None:
    order, _ = authorised(fake, gateway, orders)
    stray = gateway.create_payment_intent(order, 1, "arn:exec:other", key_generation=2).id

    assert reconciler.payment_intent(stray, now(fake)) is Finding.STRAY_RELEASED
    assert fake.payment_intents[stray]["status"] == "canceled"
    assert (captures(fake, stray), fake.refunds) == (0, {})


def test_stock_held_for_an_authorisation_that_lapsed_is_put_back(
    fake, gateway, orders, tables, reconciler
) -> None:
    # Given the stock reserved, then the execution gone and the authorisation left to lapse at Stripe
    order, payment_intent_id = authorised(fake, gateway, orders)
    steps.reserve_stock(order, payment_intent_id, stripe=gateway, orders=orders, now=now(fake))
    fake.clock.advance(7 * DAY + 1)

    assert reconciler.order(order.order_id, now(fake)) == {Finding.RELEASED: 1}
    assert stock(tables) == 10
    assert reconciler.order(order.order_id, now(fake)) == {}
