"""Payment scenarios run end to end on the local stack, and the invariants checked after each."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe

# The local stack's parameters: short waits so that every path, the timeout included, runs in seconds.
LOCAL_PARAMETERS = {
    "PaymentTimeoutSeconds": "3",
    "MaxPaymentAttempts": "2",
    "RetryDelaySeconds": "0",
    "ParkIntervalSeconds": "1",
    "MaxParkRounds": "3",
    "ReconcileAfterMinutes": "0",
    "ReceiptSender": "receipts@shop.example",
}
# Every ASL Retry's wait, scaled the same way: a step's five quick retries take about a second, not a minute.
LOCAL_RETRY_SECONDS_SCALE = 0.1
STOCK = {"MUG-BLUE": 1_000_000, "TEA-EARL": 1_000_000, "LAST-ONE": 0}


@dataclass(frozen=True)
class Scenario:
    name: str
    payment_method: str | None
    expected_state: str  # the state the execution ends in
    expected_order_status: str
    description: str
    items: tuple[tuple[str, int], ...] = (("MUG-BLUE", 2), ("TEA-EARL", 1))
    delivery: dict[str, Any] = field(default_factory=dict)  # FakeStripe.set_delivery switches
    drop_webhooks: bool = False
    three_d_secure: bool | None = None  # how the customer answers the 3-D Secure challenge
    early_webhook: bool = False  # deliver the outcome before the task token is stored
    stripe_down: bool = False  # Stripe answers 500 to every read of the order's PaymentIntent until the execution ends
    start_again: bool = False  # then the same order is started again under another name


SCENARIOS = (
    Scenario("succeeded", "pm_card_visa", "PaymentSucceeded", "fulfilled", "card charged, order fulfilled"),
    Scenario("declined", "pm_card_chargeDeclined", "PaymentFailed", "failed", "generic decline: not retried"),
    Scenario("insufficient funds", "pm_card_chargeDeclinedInsufficientFunds", "PaymentFailed", "failed",
             "retryable decline: a second attempt, then failed"),
    Scenario("3ds success", "pm_card_authenticationRequired", "PaymentSucceeded", "fulfilled",
             "requires_action, customer passes 3-D Secure", three_d_secure=True),
    Scenario("3ds failure", "pm_card_authenticationRequired", "PaymentFailed", "failed",
             "requires_action, customer fails 3-D Secure", three_d_secure=False),
    Scenario("async success", "pm_success_de", "PaymentSucceeded", "fulfilled", "SEPA debit: processing, then paid"),
    Scenario("async failure", "pm_failed_de", "PaymentFailed", "failed", "SEPA debit: processing, then failed"),
    Scenario("timeout with reconcile", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "every webhook lost: the timeout asks Stripe, which says paid", drop_webhooks=True),
    Scenario("timeout unpaid", None, "PaymentTimedOut", "timed_out",
             "nobody pays: the timeout cancels the PaymentIntent"),
    Scenario("duplicate webhooks", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "every event delivered three times", delivery={"duplicate": 2}),
    Scenario("early webhook", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "the outcome arrives before the task token is stored", early_webhook=True),
    Scenario("out of stock", "pm_card_visa", "Refunded", "refunded",
             "paid, but the last one was sold: refunded", items=(("LAST-ONE", 1),)),
    Scenario("lost webhooks and Stripe down", "pm_card_visa", "NeedsAttention", "fulfilled",
             "paid, every webhook lost, Stripe down past the parking: the reconciler completes the order",
             drop_webhooks=True, stripe_down=True),
    Scenario("duplicate start", "pm_card_visa", "DuplicateOrder", "fulfilled",
             "the paid order started again under another name: nothing charged or changed", start_again=True),
)  # fmt: skip


def order_input(
    order_id: str,
    payment_method: str | None,
    items: tuple[tuple[str, int], ...],
    customer_id: str = "cus_LocalDemo01",
) -> dict[str, Any]:
    """A start input: 10.00 a unit, in euros for a SEPA debit (`pm_*_de`), else dollars."""
    unit = 1000
    order: dict[str, Any] = {
        "orderId": order_id,
        "amount": unit * sum(quantity for _, quantity in items),
        "currency": "eur" if payment_method and payment_method.endswith("_de") else "usd",
        "customer": {"id": customer_id, "email": "ada@shop.example"},
        "items": [{"sku": sku, "quantity": quantity, "unitAmount": unit} for sku, quantity in items],
    }
    if payment_method:
        order["paymentMethod"] = payment_method
    return order


def order_for(scenario: Scenario, order_id: str) -> dict[str, Any]:
    return order_input(order_id, scenario.payment_method, scenario.items)


@dataclass
class Outcome:
    scenario: Scenario
    order_id: str
    execution_arn: str
    execution_status: str
    final_state: str
    order_status: str
    seconds: float
    timeline: list[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return (
            self.final_state == self.scenario.expected_state
            and self.order_status == self.scenario.expected_order_status
            and not self.problems
        )


def seed_inventory(cloud: LocalCloud, stock: dict[str, int] = STOCK) -> None:
    inventory = cloud.table("InventoryTable")
    for sku, available in stock.items():
        inventory.put_item(Item={"sku": sku, "available": available})


def run_scenario(cloud: LocalCloud, stripe: FakeStripe, scenario: Scenario, order_id: str | None = None) -> Outcome:
    order_id = order_id or f"{scenario.name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}"
    drop: Callable[[dict[str, Any]], bool] | None = None
    if scenario.drop_webhooks:

        def drop(event: dict[str, Any]) -> bool:
            return _order_of(event) == order_id

    stripe.set_delivery(**scenario.delivery, drop=drop, hold=scenario.early_webhook)
    if scenario.early_webhook:
        cloud.before_invoke = _deliver_before_token(stripe, order_id)
    outage = stripe_down_for(stripe, order_id) if scenario.stripe_down else None
    started_wall = time.time()
    started = time.monotonic()
    notes: list[tuple[float, str]] = []
    try:
        execution_arn = cloud.start_payment(order_for(scenario, order_id))
        execution = _drive(cloud, stripe, scenario, order_id, execution_arn)
        stripe.wait_for_deliveries(timeout=10)
        history = cloud.history(execution_arn)
        if outage is not None:
            outage.times = 0
            notes.append((time.time(), "stripe   back"))
            notes.append((time.time(), f"reconcile {_execution_ended(cloud, execution)}"))
        if scenario.start_again:
            execution_arn = cloud.start_payment(order_for(scenario, order_id), name=f"{order_id}-again")
            execution = cloud.wait_for(execution_arn, timeout=30)
            history = history + cloud.history(execution_arn)
    finally:
        stripe.set_delivery()
        cloud.before_invoke = None
        if outage is not None:
            outage.times = 0
    seconds = time.monotonic() - started
    order = cloud.table("OrdersTable").get_item(Key={"orderId": order_id}).get("Item") or {}
    return Outcome(
        scenario=scenario,
        order_id=order_id,
        execution_arn=execution_arn,
        execution_status=execution["status"],
        final_state=final_state(history),
        order_status=str(order.get("status", "missing")),
        seconds=seconds,
        timeline=timeline(history, stripe, order_id, started_wall, notes),
        problems=check_invariants(cloud, stripe, order_id),
    )


def _drive(cloud: LocalCloud, stripe: FakeStripe, scenario: Scenario, order_id: str, arn: str) -> dict[str, Any]:
    """Wait for the execution, acting as the customer where the scenario needs one."""
    answered: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if scenario.three_d_secure is not None:
            for payment_intent in payment_intents_of(stripe, order_id):
                if payment_intent["status"] == "requires_action" and payment_intent["id"] not in answered:
                    answered.add(payment_intent["id"])
                    stripe.complete_3ds(payment_intent["id"], succeed=scenario.three_d_secure)
        try:
            return cloud.wait_for(arn, timeout=0.05)
        except TimeoutError:
            continue
    return cloud.wait_for(arn, timeout=0.1)


def stripe_down_for(stripe: FakeStripe, order_id: str) -> Any:
    """Every read of the order's PaymentIntents answers 500 (with Stripe-Should-Retry: false, so stripe-python
    does not retry it itself) until the returned fault's `times` is set to 0."""
    return stripe.fail_next(
        "GET", "/v1/payment_intents/", status=500, times=1_000_000, should_retry=False,
        match=lambda path, body: any(path.endswith(pi["id"]) for pi in payment_intents_of(stripe, order_id)),
    )  # fmt: skip


def execution_ended_event(execution: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge sends when an execution ends; `execution` as DescribeExecution returns it."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "time": execution["stopDate"].isoformat(), "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"], "status": execution["status"], "input": execution["input"],
        },
    }  # fmt: skip


def _execution_ended(cloud: LocalCloud, execution: dict[str, Any]) -> str:
    """Hand the reconciler the event EventBridge sends when an execution ends; returns what it did."""
    result, error = cloud.invoke_function("ReconcilePaymentsFunction", execution_ended_event(execution))
    if error is not None:
        return f"failed: {error['errorType']}: {error['errorMessage']}"
    return "after the execution ended: " + ", ".join(f"{k}={v}" for k, v in result.items() if v)


def _deliver_before_token(stripe: FakeStripe, order_id: str) -> Callable[[str, Any], None]:
    def before_invoke(logical_id: str, event: Any) -> None:
        if logical_id == "RegisterTaskTokenFunction" and event.get("orderId") == order_id:
            stripe.release_held()
            stripe.wait_for_deliveries(timeout=10)

    return before_invoke


def _order_of(event: dict[str, Any]) -> str | None:
    obj = (event.get("data") or {}).get("object") or {}
    return (obj.get("metadata") or {}).get("order_id")


def payment_intents_of(stripe: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    return [pi for pi in list(stripe.payment_intents.values()) if pi.get("metadata", {}).get("order_id") == order_id]


def final_state(history: list[dict[str, Any]]) -> str:
    for event in reversed(history):
        if event["type"] in ("FailStateEntered", "SucceedStateEntered"):
            return str(event["stateEnteredEventDetails"]["name"])
    return "(none)"


def timeline(
    history: list[dict[str, Any]], stripe: FakeStripe, order_id: str, started: float,
    notes: list[tuple[float, str]] = (),  # type: ignore[assignment]
) -> list[str]:  # fmt: skip
    """States entered, Stripe calls and webhooks (and the scenario's own notes), in time order, from the start."""
    entries: list[tuple[float, str]] = list(notes)
    for event in history:
        if event["type"].endswith("StateEntered"):
            entries.append((event["timestamp"].timestamp(), f"state    {event['stateEnteredEventDetails']['name']}"))
        elif event["type"] == "ExecutionFailed":
            details = event["executionFailedEventDetails"]
            entries.append(
                (event["timestamp"].timestamp(), f"end      FAILED {details.get('error')}: {details.get('cause')}")
            )
        elif event["type"] == "ExecutionSucceeded":
            entries.append((event["timestamp"].timestamp(), "end      SUCCEEDED"))
    ids = {pi["id"] for pi in payment_intents_of(stripe, order_id)}
    for request in list(stripe.requests):
        mine = any(pi_id in request.path for pi_id in ids) or (
            request.idempotency_key is not None and request.idempotency_key.startswith(f"{order_id}:")
        )
        if mine:
            replay = " (idempotent replay)" if request.replayed else ""
            entries.append((request.at, f"stripe   {request.method} {request.path} -> {request.status}{replay}"))
    events = {event["id"]: event for event in list(stripe.events) if _order_of(event) == order_id}
    for delivery in list(stripe.deliveries):
        if delivery.event_id in events:
            answer = delivery.status if delivery.status is not None else delivery.error
            entries.append((delivery.at, f"webhook  {delivery.type} #{delivery.attempt} -> {answer}"))
    entries.sort(key=lambda entry: entry[0])
    return [f"{max(at - started, 0.0):7.3f}s  {text}" for at, text in entries]


def check_invariants(cloud: LocalCloud, stripe: FakeStripe, order_id: str) -> list[str]:
    """What must hold for any order, whatever the path. Returns the broken ones."""
    problems = []
    payment_intents = payment_intents_of(stripe, order_id)
    succeeded = [pi for pi in payment_intents if pi["status"] == "succeeded"]
    attempts = [pi["metadata"].get("attempt") for pi in payment_intents]
    if len(attempts) != len(set(attempts)):
        problems.append(f"more than one PaymentIntent for one attempt: {attempts}")
    if len(succeeded) > 1:
        problems.append(f"charged {len(succeeded)} times")
    order = cloud.table("OrdersTable").get_item(Key={"orderId": order_id}).get("Item") or {}
    status = order.get("status")
    refunded = [r for r in stripe.refunds.values() if r.get("payment_intent") in {pi["id"] for pi in succeeded}]
    if succeeded and status not in ("fulfilled", "refunded"):
        problems.append(f"paid but the order is {status}")
    if status == "fulfilled" and not succeeded:
        problems.append("fulfilled without a succeeded PaymentIntent")
    if status == "refunded" and not refunded:
        problems.append("order says refunded but Stripe has no refund")
    if status == "fulfilled" and refunded:
        problems.append("fulfilled and refunded")
    history = [entry["status"] for entry in order.get("history", [])]
    if history.count("fulfilled") > 1:
        problems.append("fulfilled twice")
    return problems


def summary_table(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "expected", "actual", "order", "seconds", "result")]
    for outcome in outcomes:
        rows.append((
            outcome.scenario.name,
            outcome.scenario.expected_state,
            outcome.final_state,
            outcome.order_status,
            f"{outcome.seconds:.2f}",
            "ok" if outcome.ok else "MISMATCH",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)

