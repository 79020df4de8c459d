"""The Stripe adapter and the steps that use it, against the local Stripe over real HTTP.

stripe-python runs unmodified: idempotency keys, retries and error mapping are what it does.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local_runtime.fake_stripe import FakeStripe
from payments import steps
from payments.errors import OrderNotFound, PaymentNotConfirmed, StripeUnavailable
from payments.executions import ExecutionRef
from payments.orders import parse_order
from payments.records import OrderRecords, PaymentRecords
from payments.stripe_gateway import StripeGateway, payment_idempotency_key
from tests.conftest import SAMPLE_CUSTOMER, sample_order
from tests.unit._support import APP_ID, unique

API_KEY = "sk_test_unit"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EXECUTION = ExecutionRef("arn:exec", "2026-11-25T12:00:00.000Z")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, async_settle_seconds=None) as server:
        server.add_customer(SAMPLE_CUSTOMER)
        yield server


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway.connect(API_KEY, fake.url, network_retries=2, app_id=APP_ID)


@pytest.fixture
def records(dynamodb, tables) -> tuple[PaymentRecords, OrderRecords]:
    return PaymentRecords(dynamodb, "PaymentsTable"), OrderRecords(dynamodb, "OrdersTable", "InventoryTable")


def order(payment_method: str | None = "pm_card_visa"):
    return parse_order(sample_order(orderId=unique("order"), paymentMethod=payment_method))


def bound_payment_intent(the_order, gateway: StripeGateway, orders: OrderRecords):
    """A recorded order whose first attempt is bound to a new PaymentIntent, as CreatePaymentIntent leaves it."""
    orders.claim(the_order, EXECUTION, NOW)
    orders.begin_attempt(the_order.order_id, 1, NOW)
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    orders.record_payment_intent(the_order.order_id, 1, view.id, NOW)
    return view


def intents_for(fake: FakeStripe, order_id: str) -> list[dict]:
    return [pi for pi in fake.payment_intents.values() if pi["metadata"].get("order_id") == order_id]


def test_a_retried_create_returns_the_same_payment_intent(fake, gateway) -> None:
    the_order = order()

    first = gateway.create_payment_intent(the_order, 1, "arn:exec")
    again = gateway.create_payment_intent(the_order, 1, "arn:exec")  # a Lambda or state-machine retry
    next_attempt = gateway.create_payment_intent(the_order, 2, "arn:exec")

    assert first.id == again.id != next_attempt.id
    assert len(intents_for(fake, the_order.order_id)) == 2
    keys = {r.idempotency_key for r in fake.requests if r.path == "/v1/payment_intents"}
    assert payment_idempotency_key(the_order.order_id, 1) in keys


def test_payment_intent_carries_amount_customer_and_metadata(fake, gateway) -> None:
    the_order = order()

    view = gateway.create_payment_intent(the_order, 3, "arn:exec:9")

    stored = fake.payment_intents[view.id]
    assert (stored["amount"], stored["currency"], stored["customer"]) == (2500, "usd", "cus_Q1w2E3r4")
    assert stored["metadata"] == {
        "app_id": APP_ID, "order_id": the_order.order_id, "attempt": "3", "execution_id": "arn:exec:9",
    }  # fmt: skip
    assert view.status == "succeeded"


def test_a_decline_is_an_outcome_not_an_error(gateway) -> None:
    view = gateway.create_payment_intent(order("pm_card_chargeDeclinedInsufficientFunds"), 1, "arn:exec")

    assert view.status == "requires_payment_method"
    assert (view.failure_code, view.decline_code) == ("card_declined", "insufficient_funds")


def test_connection_reset_after_stripe_committed_makes_one_payment_intent(fake, gateway) -> None:
    the_order = order()
    fake.fail_next("POST", "/v1/payment_intents", after_commit=True, reset_connection=True)

    view = gateway.create_payment_intent(the_order, 1, "arn:exec")

    assert [pi["id"] for pi in intents_for(fake, the_order.order_id)] == [view.id]
    assert any(r.replayed for r in fake.requests if r.path == "/v1/payment_intents")


# stripe-python retries a 500 (twice here): three failures exhaust it. (429s: tests/unit/test_stripe_pacing.py.)
def test_stripe_outage_beyond_client_retries_is_stripe_unavailable(fake, gateway) -> None:
    the_order = order()
    fake.fail_next("POST", "/v1/payment_intents", status=500, times=3)

    with pytest.raises(StripeUnavailable):
        gateway.create_payment_intent(the_order, 1, "arn:exec")
    assert intents_for(fake, the_order.order_id) == []
    assert gateway.create_payment_intent(the_order, 1, "arn:exec").status == "succeeded"  # every fault used up


def test_a_rejected_api_key_is_ours_to_fix_never_the_orders(fake) -> None:
    # A key rotated in Stripe before the secret was updated: 401 for every order until it is (transient,
    # so the workflow parks instead of failing the order)
    wrong = StripeGateway.connect("sk_test_wrong", fake.url, network_retries=2, app_id=APP_ID)

    with pytest.raises(StripeUnavailable, match="AuthenticationError"):
        wrong.create_payment_intent(order(), 1, "arn:exec")


def test_same_idempotency_key_with_other_parameters_is_our_bug_never_the_orders(gateway) -> None:
    the_order = order()
    gateway.create_payment_intent(the_order, 1, "arn:exec")
    changed = parse_order({**the_order.to_dict(), "amount": 2600, "items": [{"sku": "MUG-BLUE", "quantity": 1}]})

    with pytest.raises(StripeUnavailable, match="IdempotencyError"):
        gateway.create_payment_intent(changed, 1, "arn:exec")


def test_request_payment_records_the_attempt_and_the_payment_intent(fake, gateway, records) -> None:
    payments, orders = records
    the_order = order()
    orders.claim(the_order, EXECUTION, NOW)

    result = steps.request_payment(the_order, 1, "arn:exec", stripe=gateway, payments=payments, orders=orders, now=NOW)

    item = payments.get(result["paymentIntentId"])
    assert item is not None and (item["orderId"], item["attempt"], item["status"]) == (
        the_order.order_id,
        1,
        "succeeded",
    )
    recorded = orders.get(the_order.order_id)
    assert [h["status"] for h in recorded["history"]] == ["received", "payment_requested"]
    assert recorded["attempts"]["1"]["paymentIntentId"] == result["paymentIntentId"]


def test_request_payment_charges_nothing_for_an_unknown_order(fake, gateway, records) -> None:
    payments, orders = records
    the_order = order()

    with pytest.raises(OrderNotFound):
        steps.request_payment(the_order, 1, "arn:exec", stripe=gateway, payments=payments, orders=orders, now=NOW)
    assert intents_for(fake, the_order.order_id) == []


def test_settle_cancels_a_failed_attempt_so_it_can_never_be_paid(fake, gateway, records) -> None:
    payments, _ = records
    the_order = order("pm_card_chargeDeclined")
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    payments.record_payment_intent(view.id, the_order.order_id, 1, "arn:exec", view.status, NOW)

    settled = steps.settle_payment_intent(view.id, "failed", stripe=gateway, payments=payments, now=NOW)

    assert settled == {"status": "canceled", "reason": "generic_decline: Your card was declined."}
    assert fake.payment_intents[view.id]["status"] == "canceled"
    assert payments.get(view.id)["status"] == "canceled"


def test_settle_after_timeout_takes_a_paid_intent_as_paid(fake, gateway, records) -> None:
    payments, _ = records
    the_order = order()
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    payments.record_payment_intent(view.id, the_order.order_id, 1, "arn:exec", view.status, NOW)

    settled = steps.settle_payment_intent(view.id, "timeout", stripe=gateway, payments=payments, now=NOW)

    assert settled["status"] == "succeeded"
    assert fake.payment_intents[view.id]["status"] == "succeeded"
    assert not [r for r in fake.requests if r.path == f"/v1/payment_intents/{view.id}/cancel"]


def test_settle_after_timeout_of_an_unpaid_intent_cancels_it(fake, gateway, records) -> None:
    payments, _ = records
    the_order = order(payment_method=None)
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    payments.record_payment_intent(view.id, the_order.order_id, 1, "arn:exec", view.status, NOW)

    settled = steps.settle_payment_intent(view.id, "timeout", stripe=gateway, payments=payments, now=NOW)

    assert settled["status"] == "canceled"
    assert settled["reason"].startswith("no payment outcome within the timeout")


def test_settle_leaves_a_processing_debit_alone_and_forgets_a_stale_outcome(fake, gateway, records) -> None:
    payments, _ = records
    the_order = parse_order(
        {**sample_order(orderId=unique("order")), "currency": "eur", "paymentMethod": "pm_success_de"}
    )
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    payments.record_event(
        view.id, event_id="evt_old", created=1, status="payment_failed", rank=2, outcome={"status": "payment_failed"},
        terminal=False, order_id=the_order.order_id, attempt=1, now=NOW,
    )  # fmt: skip

    settled = steps.settle_payment_intent(view.id, "failed", stripe=gateway, payments=payments, now=NOW)

    assert settled["status"] == "processing"
    assert "outcome" not in payments.get(view.id)
    assert fake.payment_intents[view.id]["status"] == "processing"


def test_refund_happens_once_whatever_the_retries(fake, gateway, records) -> None:
    _, orders = records
    the_order = order()
    orders.claim(the_order, EXECUTION, NOW)
    view = gateway.create_payment_intent(the_order, 1, "arn:exec")
    caught = {"Error": "OutOfStock", "Cause": '{"errorMessage": "not enough stock for SKU MUG-BLUE"}'}

    first = steps.refund_payment(the_order, view.id, caught, stripe=gateway, orders=orders, now=NOW)
    again = steps.refund_payment(the_order, view.id, caught, stripe=gateway, orders=orders, now=NOW)

    assert first["refundId"] == again["refundId"]
    assert [r for r in fake.refunds.values() if r["payment_intent"] == view.id] == [fake.refunds[first["refundId"]]]
    assert (first["error"], first["reason"]) == ("OutOfStock", "not enough stock for SKU MUG-BLUE")
    assert orders.get(the_order.order_id)["status"] == "refunded"


def test_fulfil_refuses_an_outcome_stripe_does_not_confirm(fake, gateway, records, tables) -> None:
    # Given a PaymentIntent still waiting for 3-D Secure, and stock for the order
    _, orders = records
    the_order = order("pm_card_authenticationRequired")
    for item in the_order.items:
        tables["InventoryTable"].put_item(Item={"sku": item.sku, "available": 10})
    view = bound_payment_intent(the_order, gateway, orders)

    # When fulfilment is asked for anyway (a forged or mistaken "succeeded")
    with pytest.raises(PaymentNotConfirmed):
        steps.fulfil_order(the_order, view.id, stripe=gateway, orders=orders, now=NOW)

    # Then nothing is fulfilled and no stock moves
    assert orders.get(the_order.order_id)["status"] == "payment_requested"
    assert tables["InventoryTable"].get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"] == 10


def test_fulfil_a_paid_order_once(fake, gateway, records, tables) -> None:
    _, orders = records
    the_order = order()
    for item in the_order.items:
        tables["InventoryTable"].put_item(Item={"sku": item.sku, "available": 10})
    view = bound_payment_intent(the_order, gateway, orders)

    first = steps.fulfil_order(the_order, view.id, stripe=gateway, orders=orders, now=NOW)
    again = steps.fulfil_order(the_order, view.id, stripe=gateway, orders=orders, now=NOW)

    assert (first, again) == ({"fulfilled": True}, {"fulfilled": False})
    assert tables["InventoryTable"].get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"] == 8


# -- the attempt's one PaymentIntent, whatever Stripe remembers of its idempotency key


def create_keys(fake: FakeStripe, order_id: str) -> list[str | None]:
    return [
        r.idempotency_key
        for r in fake.requests
        if r.method == "POST" and r.path == "/v1/payment_intents" and (r.idempotency_key or "").startswith(order_id)
    ]


def request(the_order, gateway, records, now):  # type: ignore[no-untyped-def]
    payments, orders = records
    return steps.request_payment(the_order, 1, "arn:exec", stripe=gateway, payments=payments, orders=orders, now=now)


def test_a_retried_request_returns_the_bound_payment_intent_without_creating(fake, gateway, records) -> None:
    _, orders = records
    the_order = order()
    orders.claim(the_order, EXECUTION, NOW)

    first = request(the_order, gateway, records, NOW)
    again = request(the_order, gateway, records, NOW + timedelta(days=3))  # a park or a redrive, days later

    assert first == again
    assert create_keys(fake, the_order.order_id) == [payment_idempotency_key(the_order.order_id, 1)]


def test_a_lost_answer_after_stripe_forgot_the_key_creates_no_second_payment_intent(fake, records) -> None:
    # Given Stripe created the PaymentIntent but the answer was lost (no client retry), and a day passed:
    # Stripe prunes keys after 24 hours and makes a new request of a reused one (docs.stripe.com/idempotency)
    _, orders = records
    gateway = StripeGateway.connect(API_KEY, fake.url, network_retries=0, app_id=APP_ID)
    the_order = order()
    orders.claim(the_order, EXECUTION, NOW)
    fake.fail_next("POST", "/v1/payment_intents", after_commit=True, reset_connection=True, match=for_order(the_order))
    with pytest.raises(StripeUnavailable):
        request(the_order, gateway, records, NOW)
    fake.clock.advance(25 * 3600)

    # When the step runs again (a park round, or a redrive the next day)
    result = request(the_order, gateway, records, NOW + timedelta(hours=25))

    # Then it found the PaymentIntent the lost answer created, and bound it: one PaymentIntent, one charge
    (only,) = intents_for(fake, the_order.order_id)
    assert result["paymentIntentId"] == only["id"]
    assert orders.get(the_order.order_id)["attempts"]["1"]["paymentIntentId"] == only["id"]
    assert len(create_keys(fake, the_order.order_id)) == 1


def failed_create(fake: FakeStripe, records):  # type: ignore[no-untyped-def]
    """An order whose first create failed with a 500 (one Stripe would replay for its key for a day), and no
    PaymentIntent; with the gateway, without client retries, that asked."""
    gateway = StripeGateway.connect(API_KEY, fake.url, network_retries=0, app_id=APP_ID)
    the_order = order()
    records[1].claim(the_order, EXECUTION, NOW)
    fake.fail_next("POST", "/v1/payment_intents", status=500, match=for_order(the_order))
    with pytest.raises(StripeUnavailable):
        request(the_order, gateway, records, NOW)
    return the_order, gateway


def test_a_prompt_retry_keeps_the_key_so_a_request_in_flight_cannot_race_it(fake, records) -> None:
    the_order, gateway = failed_create(fake, records)

    request(the_order, gateway, records, NOW + timedelta(seconds=20))

    key = payment_idempotency_key(the_order.order_id, 1)
    assert create_keys(fake, the_order.order_id) == [key, key]
    assert len(intents_for(fake, the_order.order_id)) == 1


def test_a_key_that_gave_no_payment_intent_is_retired_once_its_requests_are_over(fake, records) -> None:
    _, orders = records
    the_order, gateway = failed_create(fake, records)

    # When the step runs again after a park round (15 minutes)
    request(the_order, gateway, records, NOW + timedelta(minutes=15))

    # Then it asked with the key's next generation, and the attempt says so
    assert create_keys(fake, the_order.order_id) == [
        payment_idempotency_key(the_order.order_id, 1), payment_idempotency_key(the_order.order_id, 1, 2),
    ]  # fmt: skip
    assert orders.get(the_order.order_id)["attempts"]["1"]["keyGeneration"] == 2
    assert len(intents_for(fake, the_order.order_id)) == 1


def for_order(the_order):  # type: ignore[no-untyped-def]
    return lambda path, body: the_order.order_id in body
