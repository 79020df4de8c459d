"""Peak load on the local stack (docs/peak-load.md): a burst waits instead of failing.

Starts Step Functions refuses are queued and drained, never lost; Stripe's 429s are waited out, never charged twice;
a hot SKU's contended stock is retried, never oversold and never refunded for contention. StartExecution is throttled
by injecting ThrottlingException (what Step Functions answers past its API quota), Stripe by the local Stripe's own
rate limiter (429 `rate_limit`) and lock timeouts (429 `lock_timeout`).
"""

import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from local_runtime.checkout import local_merchant_api
from local_runtime.engine import Fault, LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.quotas import Quotas, Throttle
from local_runtime.scenarios import final_state, order_input, payment_intents_of
from web.merchant_api import MerchantApi, MerchantApiError

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _no_faults_left(cloud: LocalCloud) -> Iterator[None]:
    yield
    cloud.aws.clear_faults()


def execution_arn(cloud: LocalCloud, order_id: str) -> str:
    return cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{order_id}"


def ended(cloud: LocalCloud, order_id: str, timeout: float = 60.0) -> str:
    """The final state of the order's execution, once it has started (from the queue, maybe) and ended."""
    client, deadline = boto3.client("stepfunctions"), time.monotonic() + timeout
    while True:
        try:
            client.describe_execution(executionArn=execution_arn(cloud, order_id))
            break
        except client.exceptions.ExecutionDoesNotExist:
            assert time.monotonic() < deadline, f"{order_id} never started"
            time.sleep(0.1)
    cloud.wait_for(execution_arn(cloud, order_id), timeout=max(1.0, deadline - time.monotonic()))
    return final_state(cloud.history(execution_arn(cloud, order_id)))


def order_status(cloud: LocalCloud, order_id: str) -> str:
    return str(cloud.table("OrdersTable").get_item(Key={"orderId": order_id}, ConsistentRead=True)["Item"]["status"])


def messages_in(cloud: LocalCloud, logical_id: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=cloud.template.physical[logical_id],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())


def charges_of(stripe: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    ids = {pi["id"] for pi in payment_intents_of(stripe, order_id)}
    return [c for c in stripe.charges.values() if c.get("payment_intent") in ids and c.get("captured")]


def refunds_of(stripe: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    ids = {pi["id"] for pi in payment_intents_of(stripe, order_id)}
    return [r for r in stripe.refunds.values() if r.get("payment_intent") in ids]


def throttle_starts_of(cloud: LocalCloud, order_id: str, times: int) -> None:
    """StartExecution refuses this order's next `times` starts, as past Step Functions' API quota (botocore's
    standard mode tries each call three times: three refusals exhaust one request)."""
    cloud.aws.inject(Fault("stepfunctions", "StartExecution", "ThrottlingException", times=times,
                           match=lambda body: f'"{order_id}"' in body))  # fmt: skip


# -- admission


@pytest.fixture(scope="module")
def merchant(cloud: LocalCloud) -> MerchantApi:
    return local_merchant_api(cloud)


def test_starts_step_functions_refuses_are_queued_answered_and_every_order_ends_as_it_would_have(
    cloud: LocalCloud, stripe: FakeStripe, merchant: MerchantApi
) -> None:
    # Given a burst of orders while StartExecution throttles: one refused at the API and again at its first drain,
    # one refused at the API, one out of stock and refused, and one that gets through
    tag = uuid.uuid4().hex[:6]
    twice_refused, refused, out_of_stock, direct = (f"adm-{tag}-{n}" for n in range(4))
    refusals_before = cloud.aws.faults_fired[("stepfunctions", "StartExecution")]
    throttle_starts_of(cloud, twice_refused, 6)
    throttle_starts_of(cloud, refused, 3)
    throttle_starts_of(cloud, out_of_stock, 3)
    orders = {order_id: order_input(order_id, "pm_card_visa", (("MUG-BLUE", 1),))
              for order_id in (twice_refused, refused, direct)}  # fmt: skip
    orders[out_of_stock] = order_input(out_of_stock, "pm_card_visa", (("LAST-ONE", 1),))

    answers = {twice_refused: merchant.start_payment(orders[twice_refused])}
    queued_status = merchant.payment(twice_refused)  # its first drain is refused too: it waits a while
    answers.update({order_id: merchant.start_payment(orders[order_id]) for order_id in (refused, out_of_stock, direct)})

    # Then every request was answered 202, the refused ones as queued, and a queued order reads as such
    assert {order_id: answer.get("status", "started") for order_id, answer in answers.items()} == {
        twice_refused: "queued", refused: "queued", out_of_stock: "queued", direct: "started",
    }  # fmt: skip
    assert answers[direct]["executionArn"] == execution_arn(cloud, direct)
    assert queued_status["status"] == "queued"
    with pytest.raises(MerchantApiError) as unknown:
        merchant.payment(f"adm-{tag}-never-posted")
    assert unknown.value.status == 404

    # And every order ended as it would have without the burst: one execution each, named by its id
    expected = {twice_refused: "PaymentSucceeded", refused: "PaymentSucceeded", direct: "PaymentSucceeded",
                out_of_stock: "OutOfStock"}  # fmt: skip
    assert {order_id: ended(cloud, order_id) for order_id in orders} == expected
    assert {order_id: order_status(cloud, order_id) for order_id in orders} == {
        twice_refused: "fulfilled", refused: "fulfilled", direct: "fulfilled", out_of_stock: "out_of_stock",
    }  # fmt: skip
    cloud.wait_for_event_queues()
    assert (messages_in(cloud, "AdmissionQueue"), messages_in(cloud, "AdmissionDeadLetterQueue")) == (0, 0)
    refusals = cloud.aws.faults_fired[("stepfunctions", "StartExecution")] - refusals_before
    assert refusals == 12  # every refusal injected was made

    # And a message SQS delivers again (at least once: a standard queue) changes nothing
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=cloud.template.physical["AdmissionQueue"], MessageBody=json.dumps(orders[refused]))
    cloud.wait_for_event_queues()
    assert messages_in(cloud, "AdmissionDeadLetterQueue") == 0
    listed = boto3.client("stepfunctions").list_executions(stateMachineArn=cloud.state_machine_arn)["executions"]
    assert sorted(e["name"] for e in listed if e["name"].startswith(f"adm-{tag}")) == sorted(orders)
    assert {order_id: len(charges_of(stripe, order_id)) for order_id in orders} == {
        twice_refused: 1, refused: 1, direct: 1, out_of_stock: 0,
    }  # fmt: skip


# -- Stripe's 429s


def burst(cloud: LocalCloud, stripe: FakeStripe, count: int, prefix: str) -> dict[str, str]:
    """`count` orders started at once; their final states once all have ended."""
    order_ids = [f"{prefix}-{uuid.uuid4().hex[:6]}-{n}" for n in range(count)]
    arns = {order_id: cloud.start_payment(order_input(order_id, "pm_card_visa", (("MUG-BLUE", 1),)))
            for order_id in order_ids}  # fmt: skip
    return {order_id: final_state(cloud.history(arn)) for order_id, arn in arns.items() if cloud.wait_for(arn, 90)}


def test_stripes_rate_limit_and_lock_timeouts_are_waited_out_and_charge_each_order_once(
    cloud: LocalCloud, stripe: FakeStripe
) -> None:
    # Given Stripe's rate limit below what the stack's budget allows (another system on the account takes the
    # rest), and captures that meet an object lock now and then
    requests_before = len(stripe.requests)
    locked = stripe.fail_next("POST", "/v1/payment_intents/", status=429, should_retry=True, times=4)  # lock_timeout
    with cloud.parameters_overridden(StripeRequestsPerSecond="40"):
        stripe.limit_rate(10)
        try:
            ends = burst(cloud, stripe, 8, "limited")
        finally:
            stripe.limit_rate(None)
            locked.times = 0

    # Then Stripe refused some requests, and every payment still completed, each charged once, nothing refunded
    answered = [r.status for r in stripe.requests[requests_before:]]
    assert answered.count(429) > 4, "the burst never met Stripe's rate limit"
    assert set(ends.values()) == {"PaymentSucceeded"} and len(ends) == 8
    for order_id in ends:
        assert [pi["status"] for pi in payment_intents_of(stripe, order_id)] == ["succeeded"], order_id
        assert (len(charges_of(stripe, order_id)), refunds_of(stripe, order_id)) == (1, []), order_id


def test_a_budget_under_stripes_limit_takes_a_burst_without_a_single_429(cloud: LocalCloud, stripe: FakeStripe) -> None:
    requests_before = len(stripe.requests)
    with cloud.parameters_overridden(StripeRequestsPerSecond="8"):
        stripe.limit_rate(10)
        try:
            ends = burst(cloud, stripe, 8, "paced")
        finally:
            stripe.limit_rate(None)

    assert set(ends.values()) == {"PaymentSucceeded"} and len(ends) == 8
    assert [r.status for r in stripe.requests[requests_before:] if r.status == 429] == []


# -- a hot SKU


@pytest.mark.parametrize("capture_method", ["manual", "automatic"], indirect=True)
def test_a_burst_on_one_sku_oversells_nothing_and_refunds_nothing_for_contention(
    cloud: LocalCloud, stripe: FakeStripe, capture_method: str
) -> None:
    # Given 12 paid orders at once for one SKU with 9 in stock, whose stock transactions conflict with each other
    # (injected: the local DynamoDB applies one request at a time) and are throttled on the hot item
    sku = f"HOT-{uuid.uuid4().hex[:6]}"
    conflicts_before = cloud.aws.faults_fired[("dynamodb", "TransactWriteItems")]
    cloud.table("InventoryTable").put_item(Item={"sku": sku, "available": 9})
    for code in ("TransactionConflictException", "ThrottlingException"):
        cloud.aws.inject(Fault("dynamodb", "TransactWriteItems", code, times=6, match=lambda body: sku in body))
    order_ids = [f"hot-{sku}-{n}" for n in range(12)]
    arns = {order_id: cloud.start_payment(order_input(order_id, "pm_card_visa", ((sku, 1),))) for order_id in order_ids}

    ends = {order_id: final_state(cloud.history(arn)) for order_id, arn in arns.items() if cloud.wait_for(arn, 90)}

    # Then exactly the stock was sold, to orders that were charged once; the rest are out of stock and, under manual
    # capture, never charged (their authorisations released); a refund only ever for want of stock
    assert cloud.aws.faults_fired[("dynamodb", "TransactWriteItems")] - conflicts_before == 12
    sold = [order_id for order_id, state in ends.items() if state == "PaymentSucceeded"]
    refused = [order_id for order_id, state in ends.items() if state in ("OutOfStock", "Refunded")]
    assert (len(sold), len(refused), len(ends)) == (9, 3, 12), ends
    assert int(cloud.table("InventoryTable").get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]["available"]) == 0
    assert all(len(charges_of(stripe, order_id)) == 1 and not refunds_of(stripe, order_id) for order_id in sold)
    if capture_method == "manual":
        assert all(not charges_of(stripe, order_id) and not refunds_of(stripe, order_id) for order_id in refused)
    else:
        assert all(len(refunds_of(stripe, order_id)) == 1 for order_id in refused)


# -- the real local quotas, no injection


@contextlib.contextmanager
def quotas_on(cloud: LocalCloud, quotas: Quotas) -> Iterator[None]:
    """The stack's AWS side under `quotas` (local_runtime/quotas.py), as `LocalCloud(quotas=...)` would have it."""
    cloud.aws.throttle = Throttle(quotas, cloud.partition_keys())
    try:
        yield
    finally:
        cloud.aws.throttle = None


def test_a_burst_above_the_real_start_quota_is_queued_and_completed_and_its_hot_sku_oversells_nothing(
    cloud: LocalCloud, stripe: FakeStripe, merchant: MerchantApi
) -> None:
    # Given the local quotas at a hundredth of AWS's (10 write units a second on one item: 5 stock transactions on the
    # hot SKU), StartExecution's a bucket of 4 refilled at 1 a second (a hundredth of AWS's, 13 and 3, let the SDK's
    # own retries absorb a burst on a slow machine), and a burst of 20 orders at once, each for the hot SKU (17 in
    # stock) and another
    quotas = dataclasses.replace(Quotas.scaled(0.01), start_execution=(1.0, 4))
    tag = uuid.uuid4().hex[:6]
    hot, other = f"HOT-{tag}", f"MUG-{tag}"
    for sku in (hot, other):
        cloud.table("InventoryTable").put_item(Item={"sku": sku, "available": 17 if sku == hot else 20})
    orders = {f"burst-{tag}-{n:02d}": order_input(f"burst-{tag}-{n:02d}", "pm_card_visa", ((hot, 1), (other, 1)))
              for n in range(20)}  # fmt: skip
    throttled_before = cloud.aws.throttled[("stepfunctions", "StartExecution")]

    with quotas_on(cloud, quotas), ThreadPoolExecutor(max_workers=10) as pool:
        answers = dict(zip(orders, pool.map(merchant.start_payment, orders.values()), strict=True))
        ends = {order_id: ended(cloud, order_id, timeout=90) for order_id in orders}

    # Then StartExecution refused some starts, which were queued (answered 202 "queued"), not failed
    assert cloud.aws.throttled[("stepfunctions", "StartExecution")] > throttled_before
    queued = [order_id for order_id, answer in answers.items() if answer.get("status") == "queued"]
    assert queued, "the burst never went over the start quota"
    # And every order, queued or not, ended as it must: the stock sold exactly, the rest out of stock, never charged
    sold = [order_id for order_id, state in ends.items() if state == "PaymentSucceeded"]
    out = [order_id for order_id, state in ends.items() if state == "OutOfStock"]
    assert (len(sold), len(out)) == (17, 3), ends
    left = {sku: cloud.table("InventoryTable").get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]["available"]
            for sku in (hot, other)}  # fmt: skip
    assert left == {hot: 0, other: 3}
    assert all(len(charges_of(stripe, order_id)) == 1 and not refunds_of(stripe, order_id) for order_id in sold)
    assert all(not charges_of(stripe, order_id) and not refunds_of(stripe, order_id) for order_id in out)
    cloud.wait_for_event_queues()
    assert (messages_in(cloud, "AdmissionQueue"), messages_in(cloud, "AdmissionDeadLetterQueue")) == (0, 0)
