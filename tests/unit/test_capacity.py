"""The capacity model's arithmetic (bench/capacity.py) on small hand-made inputs: rate = min over quotas of
quota / per-payment usage, the binding limit the quota that gives it."""

import math
from collections import Counter

import pytest

from bench import capacity
from bench.payments import PATHS, PathCounts
from local_runtime.quotas import Quotas


def test_the_rate_is_the_smallest_quota_over_usage_and_names_its_quota() -> None:
    # Given: 2 StartExecution (300/s alone: 150), 9 transitions (1,500/s alone: 166.7), 3 requests to one Stripe
    # endpoint (25/s per endpoint alone: 8.33) and 1 to another (25), 4 Stripe requests in all (100/s alone: 25)
    usage = {
        "sfn.StartExecution": 2, "sfn.StateTransition": 9, "stripe.global": 4,
        "stripe.endpoint:GET /v1/payment_intents/{id}": 3, "stripe.endpoint:POST /v1/payment_intents": 1,
    }  # fmt: skip
    quotas = {"sfn.StartExecution": 300, "sfn.StateTransition": 1500, "stripe.global": 100, "stripe.endpoint": 25}

    rate, binding = capacity.sustained_rate(usage, quotas)

    assert rate == pytest.approx(25 / 3)
    assert binding == "stripe.endpoint:GET /v1/payment_intents/{id}"  # the family's quota applies to each endpoint


def test_a_quota_of_its_own_beats_its_familys() -> None:
    usage = {"stripe.endpoint:POST /v1/refunds": 1, "stripe.endpoint:GET /v1/events": 1}

    assert capacity.sustained_rate(usage, {"stripe.endpoint": 25, "stripe.endpoint:POST /v1/refunds": 5}) == (
        5, "stripe.endpoint:POST /v1/refunds"
    )


def test_usage_without_a_quota_and_quotas_without_usage_bound_nothing() -> None:
    usage = {"lambda.concurrency": 2.0, "sfn.SendTaskSuccess": 0, "sfn.StartExecution": 1}

    assert capacity.sustained_rate(usage, {"sfn.StartExecution": 30, "sfn.SendTaskSuccess": 1, "stripe.global": 1}) == (
        30, "sfn.StartExecution"
    )
    assert capacity.sustained_rate(usage, {}) == (math.inf, "")


def test_the_next_limit_after_the_binding_one_is_listed_in_order() -> None:
    usage = {"a": 1, "b": 2, "c": 4}

    assert capacity.limits_in_order(usage, {"a": 10, "b": 10, "c": 100}) == [(5, "b"), (10, "a"), (25, "c")]


def _counts() -> PathCounts:
    return PathCounts(
        path="success", scenario=PATHS["success"], capture_method="manual", final_state="PaymentSucceeded", ok=True,
        states=["S"] * 9,
        invocations=Counter({"AcceptOrderFunction": 1, "CreatePaymentIntentFunction": 1, "StripeWebhookFunction": 4}),
        local_ms={}, aws=Counter({("stepfunctions", "SendTaskSuccess"): 1}), dynamodb_reads=0, dynamodb_writes=3,
        write_units=6, read_units=0.0, direct_dynamodb_tasks=0,
        stripe_calls=["POST /v1/payment_intents", "GET /v1/payment_intents/{id}", "GET /v1/payment_intents/{id}"],
        deliveries=Counter({"payment_intent.succeeded": 2, "charge.succeeded": 2}), log_bytes=0,
        start_executions=1,
        item_write_units=Counter({("InventoryTable", "MUG-BLUE"): 2, ("OrdersTable", "order-1"): 3,
                                  ("OrdersTable", "order-1b"): 1}),
    )  # fmt: skip


def test_usage_counts_each_quota_once_per_payment() -> None:
    used = capacity.usage(_counts())

    assert used["stripe.global"] == 3
    assert used["stripe.endpoint:GET /v1/payment_intents/{id}"] == 2
    assert (used["sfn.StartExecution"], used["sfn.StateTransition"], used["sfn.SendTaskSuccess"]) == (1, 9, 1)
    assert used["apigateway.requests"] == 2  # subscribed deliveries only; charge.* is not subscribed
    # Little's law: AcceptOrder 30 ms + CreatePaymentIntent 700 ms + 2 webhook requests x 50 ms (costs.ASSUMED_MS)
    assert used["lambda.concurrency"] == pytest.approx(0.03 + 0.7 + 2 * 0.05)
    assert used["lambda.webhook_concurrency"] == pytest.approx(0.1)
    assert used["dynamodb.partition_writes:InventoryTable MUG-BLUE"] == 2  # the item every order for the SKU writes
    assert used["dynamodb.table_writes:OrdersTable"] == 4
    assert not any(key.startswith("dynamodb.partition_writes:OrdersTable") for key in used)  # one item per order


def test_the_scaled_local_quotas_predict_the_scaled_rate_with_the_same_binding_limit() -> None:
    used = capacity.usage(_counts())

    full_rate, full_binding = capacity.sustained_rate(used, Quotas().model_limits())
    local_rate, local_binding = capacity.sustained_rate(used, Quotas.scaled(0.1).model_limits())

    # 3 Stripe requests a payment against the stack's own budget of 20 a second: 6.67, under Stripe's 12.5 (25 / 2)
    assert (full_rate, full_binding) == (pytest.approx(20 / 3), "stripe.budget")
    assert (local_rate, local_binding) == (pytest.approx(2 / 3), full_binding)
    assert Quotas.scaled(0.1).parameters() == {"StripeRequestsPerSecond": "2"}


def test_the_stack_s_stripe_budget_is_a_quota_its_browser_requests_do_not_take() -> None:
    # Given a payment whose customer's browser made one of its three Stripe requests (Stripe.js, publishable key)
    counts = _counts()
    counts.browser_stripe_calls = 1

    used = capacity.usage(counts)

    # Then Stripe counts all three, the stack's budget two; the budget is the template's default
    assert (used["stripe.global"], used["stripe.budget"]) == (3, 2)
    assert capacity.default_limits()["stripe.budget"] == capacity.stripe_budget() == 20
    assert capacity.sustained_rate(used, capacity.default_limits()) == (pytest.approx(10), "stripe.budget")


def test_the_default_quotas_include_the_templates_webhook_reservation() -> None:
    limits = capacity.default_limits()

    assert limits["lambda.webhook_concurrency"] == capacity.webhook_reserved_concurrency() == 20
    assert (limits["stripe.global"], limits["stripe.endpoint"], limits["sfn.StartExecution"]) == (100, 25, 300)


def test_the_section_gives_each_path_and_capture_method_its_binding_limit_and_the_next() -> None:
    paths = {method: {path: _counts() for path in PATHS} for method in ("manual", "automatic")}

    text = capacity.render(paths)

    assert text.startswith(capacity.BEGIN) and text.rstrip().endswith(capacity.END)
    success = next(line for line in text.splitlines() if line.startswith("| success |"))
    assert success.count(
        "**6.7**/s: the stack's Stripe budget (StripeRequestsPerSecond), 20; "
        "then 12.5/s: Stripe, requests per endpoint (GET /v1/payment_intents/{id}), 25"
    ) == 2  # default quotas, manual and automatic
    assert "**0.7 payments/s**" in text  # the local prediction at scale 0.1
