"""Faults on the way: Stripe and AWS failing under the workflow, which must still end right."""

import json
import time
import types
import uuid

import boto3
import pytest

from local_runtime.engine import Fault
from local_runtime.scenarios import SCENARIOS, final_state, order_for, payment_intents_of, run_scenario

pytestmark = pytest.mark.e2e
SUCCEEDED = next(s for s in SCENARIOS if s.name == "succeeded")


@pytest.fixture(autouse=True)
def _no_faults_left(cloud):
    yield
    cloud.aws.clear_faults()


def test_throttled_resume_answers_503_and_stripes_redelivery_resumes(
    cloud, stripe, capture_method, monkeypatch
) -> None:
    # botocore's backoff between those attempts (random, up to 3 s) would race the 3 s payment timeout
    monkeypatch.setattr("botocore.endpoint.time", types.SimpleNamespace(sleep=lambda seconds: None))
    # Given the outcome webhook arrives after the token is stored, and SendTaskSuccess is
    # throttled past the client's own retries (3 attempts) for the first delivery
    stripe.set_delivery(hold=True)
    order = order_for(SUCCEEDED, f"throttled-{uuid.uuid4().hex[:8]}")
    execution_arn = cloud.start_payment(order)
    _wait_for_task_token(cloud, order["orderId"])
    cloud.aws.inject(Fault("stepfunctions", "SendTaskSuccess", "ThrottlingException", times=3))
    stripe.set_delivery()
    stripe.release_held()

    execution = cloud.wait_for(execution_arn, timeout=10)
    stripe.wait_for_deliveries()

    # Then the first delivery got 503 (so Stripe retried) and the retry resumed the execution
    assert execution["status"] == "SUCCEEDED"
    assert final_state(cloud.history(execution_arn)) == "PaymentSucceeded"
    pi_ids = {pi["id"] for pi in payment_intents_of(stripe, order["orderId"])}
    # The event that resumes: the authorisation (CaptureMethod manual), or the payment
    resuming = {"manual": "payment_intent.amount_capturable_updated", "automatic": "payment_intent.succeeded"}
    events = {
        e["id"]
        for e in stripe.events
        if e["type"] == resuming[capture_method] and e["data"]["object"]["id"] in pi_ids
    }
    statuses = [d.status for d in stripe.deliveries if d.event_id in events]
    assert statuses == [503, 200]
    assert not any(line for line in _states(cloud, execution_arn) if line == "ReconcileAfterTimeout")


def test_stripe_connection_reset_after_commit_creates_one_payment_intent(cloud, stripe) -> None:
    # Given Stripe commits the PaymentIntent but the connection drops before the answer
    stripe.fail_next("POST", "/v1/payment_intents", after_commit=True, reset_connection=True)

    outcome = run_scenario(cloud, stripe, SUCCEEDED)

    # Then stripe-python's retry with the same idempotency key got the replay: one charge
    assert outcome.ok, outcome.timeline
    assert len(payment_intents_of(stripe, outcome.order_id)) == 1


def test_stripe_outage_is_retried_by_the_state_machine(cloud, stripe) -> None:
    # Given Stripe answers 500 more often than stripe-python retries (2), so the ASL Retry acts
    stripe.fail_next("POST", "/v1/payment_intents", status=500, times=4)

    outcome = run_scenario(cloud, stripe, SUCCEEDED)

    assert outcome.ok, outcome.timeline
    assert len(payment_intents_of(stripe, outcome.order_id)) == 1
    assert any("CreatePaymentIntent" in line for line in outcome.timeline)


def test_throttled_order_update_in_the_state_machine_is_retried(cloud, stripe) -> None:
    # Given the direct DynamoDB integration that marks a failed order is throttled twice
    declined = next(s for s in SCENARIOS if s.name == "declined twice")
    cloud.aws.inject(Fault("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", times=2))

    outcome = run_scenario(cloud, stripe, declined)

    assert outcome.ok, outcome.timeline


def _wait_for_task_token(cloud, order_id: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        items = cloud.table("PaymentsTable").scan()["Items"]
        if any(i.get("orderId") == order_id and i.get("taskToken") for i in items):
            return
        time.sleep(0.02)
    raise AssertionError("task token never stored")


def _states(cloud, execution_arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in cloud.history(execution_arn) if "stateEnteredEventDetails" in e
    ]


def test_a_forged_success_with_a_stolen_task_token_fulfils_nothing(cloud, stripe) -> None:
    # Given a payment waiting for 3-D Secure, its task token stored
    three_ds = next(s for s in SCENARIOS if s.name == "3ds success")
    order = order_for(three_ds, f"forged-{uuid.uuid4().hex[:8]}")
    execution_arn = cloud.start_payment(order)
    _wait_for_task_token(cloud, order["orderId"])
    item = next(i for i in cloud.table("PaymentsTable").scan()["Items"] if i.get("orderId") == order["orderId"])

    # When someone holding the token resumes the execution with a made-up "succeeded"
    boto3.client("stepfunctions").send_task_success(
        taskToken=item["taskToken"],
        output=json.dumps({"status": "succeeded", "paymentIntentId": item["paymentIntentId"], "retryable": False}),
    )
    execution = cloud.wait_for(execution_arn, timeout=10)

    # Then Stripe's word wins: the order is not fulfilled, and the PaymentIntent is cancelled
    assert final_state(cloud.history(execution_arn)) == "PaymentFailed"
    assert execution["status"] == "FAILED"
    assert cloud.table("OrdersTable").get_item(Key={"orderId": order["orderId"]})["Item"]["status"] == "failed"
    assert stripe.payment_intents[item["paymentIntentId"]]["status"] == "canceled"


def test_stripe_denying_a_reconciled_payment_ends_in_a_named_state(cloud, stripe, capture_method) -> None:
    # Given every webhook is lost, so the timeout asks Stripe, which says paid (or authorised); but when the next
    # step asks again (FulfilOrder; ReserveStock with manual capture) Stripe no longer confirms it
    reconciled = next(s for s in SCENARIOS if s.name == "timeout with reconcile")
    asks_again = "ReserveStockFunction" if capture_method == "manual" else "FulfilOrderFunction"

    def stripe_denies(logical_id: str, event: dict) -> None:
        if logical_id == asks_again:
            stripe.payment_intents[event["paymentIntentId"]]["status"] = "canceled"

    cloud.before_invoke = stripe_denies
    try:
        outcome = run_scenario(cloud, stripe, reconciled)
    finally:
        cloud.before_invoke = None

    # Then the order fails by name, with nothing fulfilled, rather than on a missing outcome
    assert (outcome.execution_status, outcome.final_state) == ("FAILED", "PaymentFailed")
    assert outcome.order_status == "failed"
