"""Every scenario of `make demo`, through the real ASL and the real handlers."""

import pytest

from local_runtime.scenarios import SCENARIOS, Scenario, payment_intents_of, run_scenario

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_ends_in_the_expected_state_with_invariants_intact(cloud, stripe, scenario: Scenario) -> None:
    outcome = run_scenario(cloud, stripe, scenario)

    assert outcome.final_state == scenario.expected_state, outcome.timeline
    assert outcome.order_status == scenario.expected_order_status, outcome.timeline
    assert outcome.problems == []
    assert outcome.execution_status == ("SUCCEEDED" if scenario.expected_state == "PaymentSucceeded" else "FAILED")


def test_insufficient_funds_makes_one_payment_intent_per_attempt(cloud, stripe) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "insufficient funds")

    outcome = run_scenario(cloud, stripe, scenario)

    attempts = sorted(pi["metadata"]["attempt"] for pi in payment_intents_of(stripe, outcome.order_id))
    assert attempts == ["1", "2"]
    assert all(pi["status"] == "canceled" for pi in payment_intents_of(stripe, outcome.order_id))


def test_duplicate_webhooks_fulfil_once(cloud, stripe) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "duplicate webhooks")
    before = cloud.table("InventoryTable").get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"]

    outcome = run_scenario(cloud, stripe, scenario)

    after = cloud.table("InventoryTable").get_item(Key={"sku": "MUG-BLUE"})["Item"]["available"]
    assert outcome.ok
    assert before - after == 2  # the order's quantity, once
    spent = [d for d in stripe.deliveries if d.type == "payment_intent.succeeded" and d.status == 200]
    assert len(spent) >= 3
