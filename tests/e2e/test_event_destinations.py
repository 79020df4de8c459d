"""Stripe's event destinations on the local stack: a thin event whose PaymentIntent cannot be fetched is our
transient failure, retried by the way it came in (the webhook answers 503 and Stripe delivers it again; the
EventBridge queue's message comes again after its visibility timeout), and never lost."""

import json
import uuid

import pytest

from local_runtime.scenarios import SCENARIOS, STRIPE_EVENT_SOURCE, payment_intents_of, run_scenario

pytestmark = pytest.mark.e2e
SUCCEEDED = next(s for s in SCENARIOS if s.name == "succeeded")


@pytest.mark.parametrize("destination", ["webhook thin", "eventbridge thin"])
def test_a_thin_event_whose_fetch_fails_is_retried_by_its_ingress(cloud, stripe, destination: str) -> None:
    # Given Stripe answers 500 to the first reads of the order's PaymentIntent: the thin event's fetch among them
    order_id = f"thin-fetch-{uuid.uuid4().hex[:8]}"
    stripe.fail_next(
        "GET", "/v1/payment_intents/", status=500, times=2, should_retry=False,
        match=lambda path, body: any(path.endswith(pi["id"]) for pi in payment_intents_of(stripe, order_id)),
    )  # fmt: skip

    outcome = run_scenario(cloud, stripe, SUCCEEDED, order_id=order_id, destination=destination)

    # Then the event came again and resumed the payment; nothing waited for the timeout
    assert (outcome.final_state, outcome.order_status) == ("PaymentSucceeded", "fulfilled"), outcome.timeline
    assert "ReconcileAfterTimeout" not in "\n".join(outcome.timeline)
    assert [line for line in outcome.timeline if "-> 500" in line], outcome.timeline
    if destination == "webhook thin":
        answers = [d.status for d in stripe.deliveries if d.type.startswith("v1.payment_intent.") and d.status]
        assert 503 in answers


def test_events_of_another_deployment_on_the_bus_change_nothing(cloud, stripe) -> None:
    # The rule keeps this stack's snapshot events only (metadata.app_id); a thin event has no metadata, so its
    # fetch tells: another deployment's PaymentIntent is not ours
    other = {"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded",
             "metadata": {"app_id": "another-stack", "order_id": "theirs-1"}}  # fmt: skip
    event = {"id": "evt_theirs", "object": "event", "type": "payment_intent.succeeded", "created": 1,
             "data": {"object": other}}  # fmt: skip
    stripe.wait_for_deliveries()
    cloud.wait_for_event_queues()  # what earlier tests sent is handled
    before = len(cloud.invocations)

    cloud.put_partner_event(
        {"Source": STRIPE_EVENT_SOURCE, "DetailType": "payment_intent.succeeded", "Detail": json.dumps(event)}
    )
    cloud.wait_for_event_queues()

    assert [i.function for i in cloud.invocations[before:]] == []
    assert cloud.table("PaymentsTable").get_item(Key={"paymentIntentId": "pi_elsewhere"}).get("Item") is None
