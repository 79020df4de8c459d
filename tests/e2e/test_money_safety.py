"""Money safety end to end, against Stripe's and AWS's real semantics where the fakes used to be kinder.

Each test is one way a payments reviewer lost money or an order on the local stack (issue 10): a second
execution for a paid order, a short outage that refunded a good order, a paid order orphaned with no
alarm, an order too large to fulfil that was charged anyway.
"""

import json
import time
import uuid
from typing import Any

import pytest

from local_runtime.engine import Fault
from local_runtime.scenarios import SCENARIOS, final_state, order_for, order_input, payment_intents_of, run_scenario

pytestmark = pytest.mark.e2e
SUCCEEDED = next(s for s in SCENARIOS if s.name == "succeeded")
LOST_WEBHOOKS = next(s for s in SCENARIOS if s.name == "timeout with reconcile")


@pytest.fixture(autouse=True)
def _no_faults_left(cloud):
    yield
    cloud.aws.clear_faults()


def order_record(cloud, order_id: str) -> dict[str, Any]:
    return cloud.table("OrdersTable").get_item(Key={"orderId": order_id}, ConsistentRead=True)["Item"]


def stock(cloud, sku: str) -> int:
    return int(cloud.table("InventoryTable").get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]["available"])


def refunds_of(stripe, order_id: str) -> list[dict[str, Any]]:
    ids = {pi["id"] for pi in payment_intents_of(stripe, order_id)}
    return [r for r in stripe.refunds.values() if r.get("payment_intent") in ids]


# -- one order, one payment


@pytest.mark.parametrize("after_hours", [0, 25], ids=["same-day", "after-stripe-forgot-the-keys"])
def test_a_second_execution_for_a_paid_order_changes_nothing(cloud, stripe, after_hours: int) -> None:
    # Given a paid, fulfilled order
    first = run_scenario(cloud, stripe, SUCCEEDED)
    assert first.ok, first.timeline
    before, mugs = order_record(cloud, first.order_id), stock(cloud, "MUG-BLUE")
    # and, for the second case, a day later: Stripe has pruned the order's idempotency keys
    stripe.clock.advance(after_hours * 3600)
    try:
        # When a client starts the same order again under another name (a retry with a default UUID name)
        again = cloud.start_payment(order_for(SUCCEEDED, first.order_id), name=f"retry-{uuid.uuid4().hex[:8]}")
        execution = cloud.wait_for(again, timeout=30)
    finally:
        stripe.clock.advance(-after_hours * 3600)  # the other tests' Stripe and AWS agree on the time

    # Then it ends DuplicateOrder without calling Stripe: one PaymentIntent, one receipt, the order untouched
    assert (execution["status"], final_state(cloud.history(again))) == ("FAILED", "DuplicateOrder")
    assert first.order_id in execution["cause"]
    assert len(payment_intents_of(stripe, first.order_id)) == 1
    assert order_record(cloud, first.order_id) == before
    assert stock(cloud, "MUG-BLUE") == mugs


def test_two_executions_started_at_once_for_one_order_charge_once(cloud, stripe) -> None:
    order = order_for(SUCCEEDED, f"twice-{uuid.uuid4().hex[:8]}")

    arns = [cloud.start_payment(order, name=f"{order['orderId']}-{n}") for n in (1, 2)]
    ends = sorted(final_state(cloud.history(arn)) for arn in arns if cloud.wait_for(arn, timeout=30))

    assert ends == ["DuplicateOrder", "PaymentSucceeded"]
    assert [pi["status"] for pi in payment_intents_of(stripe, order["orderId"])] == ["succeeded"]
    assert order_record(cloud, order["orderId"])["status"] == "fulfilled"


# -- transient is never definitive


@pytest.mark.parametrize(
    ("capture_method", "stock_step"),
    [("manual", "ReserveStock"), ("automatic", "FulfilOrder")],
    indirect=["capture_method"],
)
def test_a_short_outage_during_fulfilment_refunds_nothing(cloud, stripe, stock_step: str) -> None:
    # Given a paid (or authorised) order whose stock transaction conflicts (a hot SKU in a flash sale) more often
    # than the step's own Retry tries
    order_id = f"conflict-{uuid.uuid4().hex[:8]}"
    cloud.aws.inject(Fault("dynamodb", "TransactWriteItems", "TransactionConflictException", times=6,
                           match=lambda body: order_id in body))  # fmt: skip

    outcome = run_scenario(cloud, stripe, SUCCEEDED, order_id=order_id)

    # Then the step parked and ran again: fulfilled, nothing refunded, no authorisation released
    assert outcome.ok, outcome.timeline
    assert f"state    Park{stock_step}" in "\n".join(outcome.timeline)
    assert refunds_of(stripe, order_id) == []
    assert [pi["status"] for pi in payment_intents_of(stripe, order_id)] == ["succeeded"]


def test_a_rejected_api_key_parks_instead_of_failing_the_order(cloud, stripe) -> None:
    # Given the Stripe key was rolled before the secret was updated: 401 for every create, for a while
    order_id = f"rotation-{uuid.uuid4().hex[:8]}"
    stripe.fail_next("POST", "/v1/payment_intents", status=401, times=7, match=lambda path, body: order_id in body)

    outcome = run_scenario(cloud, stripe, SUCCEEDED, order_id=order_id)

    assert outcome.ok, outcome.timeline
    assert "state    ParkCreatePaymentIntent" in "\n".join(outcome.timeline)
    assert len(payment_intents_of(stripe, order_id)) == 1


# -- nothing paid is left behind, and what is left behind pages someone


def test_a_paid_order_orphaned_by_lost_webhooks_and_an_outage_is_repaired_by_the_reconciler(cloud, stripe) -> None:
    # Given every webhook of a paid order is lost, and Stripe is down for the order's PaymentIntent longer
    # than the workflow parks (the timeout's reconciliation cannot ask it)
    order_id = f"orphan-{uuid.uuid4().hex[:8]}"
    outage = stripe_down_for(stripe, order_id)

    outcome = run_scenario(cloud, stripe, LOST_WEBHOOKS, order_id=order_id)

    # Then the execution ends in a named state that pages someone, and the order says so
    assert (outcome.execution_status, outcome.final_state) == ("FAILED", "NeedsAttention")
    record = order_record(cloud, order_id)
    assert record["status"] == "needs_attention"
    assert "ReconcileAfterTimeout still failing" in record["history"][-1]["reason"]

    # When Stripe is back and the reconciler runs (every 15 minutes, or at once on the execution's end)
    outage.times = 0
    result, error = cloud.invoke_function("ReconcilePaymentsFunction", {"sweep": {}})

    # Then the paid order is fulfilled, once, and reported as an orphan
    assert error is None, error
    assert result["fulfilled"] >= 1
    assert order_record(cloud, order_id)["status"] == "fulfilled"
    assert refunds_of(stripe, order_id) == []
    again, _ = cloud.invoke_function("ReconcilePaymentsFunction", {"orderId": order_id})
    assert again["settled"] == 1


def test_a_payment_that_succeeds_after_its_execution_ended_is_completed_from_the_webhook(cloud, stripe) -> None:
    # Given a payment whose execution timed out and cancelled... except the customer paid the instant before:
    # here, held webhooks released after the execution ended NeedsAttention (Stripe down at reconcile)
    order_id = f"late-{uuid.uuid4().hex[:8]}"
    stripe.set_delivery(hold=True)
    outage = stripe_down_for(stripe, order_id)
    arn = cloud.start_payment(order_for(SUCCEEDED, order_id))
    assert final_state(_history_when_done(cloud, arn)) == "NeedsAttention"
    outage.times = 0

    # When Stripe's webhook finally arrives: the token is spent, so the webhook starts the reconciler
    stripe.set_delivery()
    stripe.release_held()
    stripe.wait_for_deliveries(timeout=10)

    # Then the order is completed without waiting for the next sweep
    _eventually(lambda: order_record(cloud, order_id)["status"] == "fulfilled")
    assert refunds_of(stripe, order_id) == []


# -- the real services' limits


def test_an_order_too_large_to_fulfil_in_one_transaction_is_refused_before_any_charge(cloud, stripe) -> None:
    order_id = f"huge-{uuid.uuid4().hex[:8]}"
    order = order_input(order_id, "pm_card_visa", tuple((f"SKU-{n:03d}", 1) for n in range(101)))

    arn = cloud.start_payment(order)
    execution = cloud.wait_for(arn, timeout=30)

    assert (final_state(cloud.history(arn)), execution["status"]) == ("OrderRejected", "FAILED")
    assert "at most 99 fit in one fulfilment transaction" in execution["cause"]
    assert payment_intents_of(stripe, order_id) == []


@pytest.mark.parametrize(
    ("capture_method", "longest_path_end"), [("manual", "OutOfStock"), ("automatic", "Refunded")],
    indirect=["capture_method"],
)
def test_the_largest_order_stays_under_the_item_and_payload_limits(cloud, stripe, longest_path_end: str) -> None:
    # Given the largest order validation admits: 99 lines of 64-character SKUs, the last out of stock, so the
    # execution takes the longest path that carries the order (authorised or paid, out of stock, released or
    # refunded)
    order_id = "L" * 64
    skus = [f"{n:02d}".ljust(64, "S") for n in range(99)]
    inventory = cloud.table("InventoryTable")
    for sku in skus:
        inventory.put_item(Item={"sku": sku, "available": 0 if sku == skus[-1] else 10})
    order = order_input(order_id, "pm_card_visa", tuple((sku, 1) for sku in skus))
    order["customer"] = {"id": "cus_" + "c" * 251, "email": "a" * 240 + "@shop.example"}
    stripe.add_customer(order["customer"]["id"])

    arn = cloud.start_payment(order, name=order_id)
    execution = cloud.wait_for(arn, timeout=60)

    # Then it ran to its end, and every state's data and the order item stayed far inside the limits
    assert final_state(cloud.history(arn)) == longest_path_end, execution
    largest_state = max(
        len(json.dumps(details.get("input") or details.get("output") or "").encode())
        for event in cloud.history(arn)
        for details in (event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {},)
    )
    assert largest_state < 256 * 1024 // 4, largest_state  # Step Functions: 256 KiB per state's input or output
    item_size = len(json.dumps(order_record(cloud, order_id), default=str).encode())
    assert item_size < 400 * 1000 // 4, item_size  # DynamoDB: 400 KB an item


def stripe_down_for(stripe, order_id: str):  # type: ignore[no-untyped-def]
    """Every read of the order's PaymentIntents answers 500 (Stripe-Should-Retry: false, so stripe-python
    does not retry it itself) until the returned fault's `times` is set to 0."""
    return stripe.fail_next(
        "GET", "/v1/payment_intents/", status=500, times=10_000, should_retry=False,
        match=lambda path, body: any(path.endswith(pi["id"]) for pi in payment_intents_of(stripe, order_id)),
    )  # fmt: skip


def _history_when_done(cloud, arn: str) -> list[dict[str, Any]]:
    cloud.wait_for(arn, timeout=60)
    return cloud.history(arn)


def _eventually(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)
