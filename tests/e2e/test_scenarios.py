"""Every scenario of `make demo`, through the real ASL and the real handlers."""

import json
from typing import Any

import pytest

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.scenarios import (
    CORE_SCENARIOS,
    DESTINATIONS,
    LOCAL_PARAMETERS,
    SCENARIOS,
    Scenario,
    payment_intents_of,
    run_scenario,
)

pytestmark = pytest.mark.e2e


BOTH_CAPTURE_METHODS = [
    pytest.param(scenario, method, id=f"{scenario.name} [{method}]")
    for method in ("manual", "automatic")
    for scenario in SCENARIOS
    if not (scenario.manual_only and method == "automatic")
]


@pytest.mark.parametrize(("scenario", "capture_method"), BOTH_CAPTURE_METHODS, indirect=["capture_method"])
def test_scenario_ends_in_the_expected_state_with_invariants_intact(
    scenario_outcome, scenario: Scenario, capture_method: str
) -> None:
    outcome = scenario_outcome(scenario)
    expected_state, expected_order_status = scenario.expected(capture_method)

    assert outcome.final_state == expected_state, outcome.timeline
    assert outcome.order_status == expected_order_status, outcome.timeline
    assert outcome.problems == []
    assert outcome.execution_status == ("SUCCEEDED" if expected_state == "PaymentSucceeded" else "FAILED")


@pytest.mark.parametrize("destination", DESTINATIONS[1:])
@pytest.mark.parametrize("name", CORE_SCENARIOS)
def test_core_scenarios_end_the_same_whatever_the_event_destination(cloud, stripe, name: str, destination: str) -> None:
    # Stripe's events by webhook with thin payloads, and through EventBridge as snapshots or thin: one path in
    scenario = next(s for s in SCENARIOS if s.name == name)

    outcome = run_scenario(cloud, stripe, scenario, destination=destination)

    assert (outcome.final_state, outcome.order_status) == (scenario.expected_state, scenario.expected_order_status), (
        outcome.timeline
    )
    assert outcome.problems == []
    way = "bus     " if destination.startswith("eventbridge") else "webhook "
    assert any(f"s  {way}" in line for line in outcome.timeline), outcome.timeline


@pytest.mark.parametrize(
    "name", ["declined, then another card", "3ds failure, then another card", "saved card, insufficient funds"]
)
def test_every_attempt_is_on_the_orders_one_payment_intent(cloud, stripe, name: str) -> None:
    # A decline puts the PaymentIntent back to requires_payment_method; the customer (or the off-session
    # retry) confirms that same one again (docs.stripe.com/api/payment_intents/confirm)
    outcome = run_scenario(cloud, stripe, next(s for s in SCENARIOS if s.name == name))

    (payment_intent,) = payment_intents_of(stripe, outcome.order_id)
    assert payment_intent["status"] == ("succeeded" if outcome.final_state == "PaymentSucceeded" else "canceled")
    creates = [r for r in stripe.requests if r.method == "POST" and r.path == "/v1/payment_intents"
               and (r.idempotency_key or "").startswith(f"{outcome.order_id}:")]  # fmt: skip
    assert [r.idempotency_key for r in creates] == [f"{outcome.order_id}:attempt-1:create"]


def _states_entered(cloud: LocalCloud, order_id: str) -> list[dict[str, Any]]:
    arn = cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + order_id
    return [e["stateEnteredEventDetails"] for e in cloud.history(arn) if e["type"].endswith("StateEntered")]


@pytest.mark.parametrize(
    ("capture_method", "paid"),
    [("manual", ["ReserveStock", "CapturePayment", "FulfilOrder"]), ("automatic", ["FulfilOrder"])],
    indirect=["capture_method"],
)
def test_a_card_payment_enters_no_state_it_does_not_need(cloud: LocalCloud, stripe: FakeStripe, paid) -> None:
    # Step Functions bills every state entered: AcceptOrder's result is already the first attempt's state
    outcome = run_scenario(cloud, stripe, next(s for s in SCENARIOS if s.name == "succeeded"))

    entered = _states_entered(cloud, outcome.order_id)
    assert [state["name"] for state in entered] == [
        "AcceptOrder", "CreatePaymentIntent", "WaitForPaymentOutcome", "RouteOutcome", *paid, "SendReceipt",
        "PaymentSucceeded",
    ]  # fmt: skip
    first = json.loads(entered[1]["input"])
    assert first["order"]["orderId"] == outcome.order_id
    assert (first["attempt"], first["settings"], first["park"]) == (
        1,
        {
            "maxAttempts": int(LOCAL_PARAMETERS["MaxPaymentAttempts"]),
            "retryDelaySeconds": int(LOCAL_PARAMETERS["RetryDelaySeconds"]),
            "paymentTimeoutSeconds": int(LOCAL_PARAMETERS["PaymentTimeoutSeconds"]),
            "parkSeconds": int(LOCAL_PARAMETERS["ParkIntervalSeconds"]),
            "maxParkRounds": int(LOCAL_PARAMETERS["MaxParkRounds"]),
        },
        {"rounds": 0},
    )


def test_the_next_attempt_waits_on_the_same_payment_intent_for_a_newer_outcome(cloud: LocalCloud, stripe) -> None:
    outcome = run_scenario(cloud, stripe, next(s for s in SCENARIOS if s.name == "declined, then another card"))

    entered = _states_entered(cloud, outcome.order_id)
    names = [state["name"] for state in entered]
    retry = names.index("NotifyRetry")
    assert names[retry : retry + 4] == ["NotifyRetry", "NextAttempt", "RouteRetry", "WaitForPaymentOutcome"]
    first_wait, second_wait = (
        json.loads(entered[i]["input"]) for i in (names.index("WaitForPaymentOutcome"), retry + 3)
    )
    assert second_wait["attempt"] == first_wait["attempt"] + 1
    assert second_wait["payment"] == first_wait["payment"]
    assert second_wait["consumed"]["eventId"] == json.loads(entered[retry]["input"])["outcome"]["eventId"]


def test_duplicate_webhooks_fulfil_once(cloud, stripe) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "duplicate webhooks")
    before = cloud.table("InventoryTable").get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"]

    outcome = run_scenario(cloud, stripe, scenario)

    after = cloud.table("InventoryTable").get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"]
    assert outcome.ok
    assert before - after == 2  # the order's quantity, once
    spent = [d for d in stripe.deliveries if d.type == "payment_intent.succeeded" and d.status == 200]
    assert len(spent) >= 3
