"""Per payment, on each path, counted from real local executions; the webhook's critical path; throughput.

Each path is one demo scenario run through the real ASL, the real handlers and signed HTTP
webhooks (local_runtime), after a warm-up payment so that caches are as in steady state.
Counted: state transitions (every *StateEntered event of the execution history: Step Functions
bills one transition per state entered, retries included), Lambda invocations, AWS requests by
service (the harness's own requests left out), Stripe API calls (FakeStripe's request recorder),
webhook deliveries and the bytes the functions log; for the capacity model (bench/capacity.py), Stripe
requests by endpoint, StartExecution calls (the harness's start included: one per payment) and DynamoDB write
units on each item.
"""

import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.local_stack import SIGNING_SECRET, Stack
from local_runtime.engine import FINAL_STATUSES, http_api_event
from local_runtime.fake_stripe import sign_payload
from local_runtime.scenarios import SCENARIOS, Scenario, order_for, payment_intents_of, run_scenario

PATHS = {  # path name -> demo scenario
    "success": "succeeded",
    "decline then retry": "declined, then another card",
    "async": "async success",
    "timeout with reconcile": "timeout with reconcile",
    "out of stock": "out of stock",
}
# Every path is measured under each (template parameter CaptureMethod); manual is the template's default.
CAPTURE_METHODS = ("manual", "automatic")
# The events the production endpoint subscribes to (README, "Stripe webhook set-up"). The local
# Stripe delivers every event (payment_intent.created, charge.*), which the webhook answers 200.
SUBSCRIBED_EVENTS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.processing", "payment_intent.requires_action", "payment_intent.amount_capturable_updated",
})  # fmt: skip
# The events that resume a waiting execution with a payment: charged (automatic), or authorised (manual).
RESUMING_EVENTS = ("payment_intent.succeeded", "payment_intent.amount_capturable_updated")
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass
class PathCounts:
    path: str
    scenario: str
    capture_method: str
    final_state: str
    ok: bool
    states: list[str]
    invocations: Counter[str]  # logical id -> count (webhook invocations included)
    local_ms: dict[str, float]  # logical id -> mean local duration (in-process, no network)
    aws: Counter[tuple[str, str]]  # (service, action) made by the stack, harness excluded
    dynamodb_reads: int
    dynamodb_writes: int
    write_units: int  # on-demand write request units, each item priced at its final size
    read_units: float
    direct_dynamodb_tasks: int  # Task states that call DynamoDB directly (no Lambda)
    stripe_calls: list[str]
    deliveries: Counter[str]  # event type -> deliveries to the webhook
    log_bytes: int
    item_bytes: dict[str, int] = field(default_factory=dict)
    start_executions: int = 1  # StartExecution calls, whoever made them
    item_write_units: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table logical id, key) -> units
    browser_stripe_calls: int = 0  # of stripe_calls, made with the publishable key (Stripe.js): outside the budget

    @property
    def budgeted_stripe_calls(self) -> int:
        """Stripe requests the stack's functions make with the secret key: each takes a token of the budget."""
        return len(self.stripe_calls) - self.browser_stripe_calls

    @property
    def transitions(self) -> int:
        return len(self.states)

    @property
    def webhook_requests(self) -> int:
        """HTTP API requests in production: deliveries of the event types the endpoint subscribes to."""
        return sum(n for kind, n in self.deliveries.items() if kind in SUBSCRIBED_EVENTS)

    @property
    def lambda_invocations(self) -> int:
        """Invocations in production: the state machine's, plus one webhook invocation per subscribed delivery."""
        return sum(n for name, n in self.invocations.items() if name != "StripeWebhookFunction") + self.webhook_requests

    @property
    def stripe_endpoints(self) -> Counter[str]:
        """Stripe API requests by endpoint (method and path pattern), as Stripe's per-endpoint limits count them."""
        return Counter(self.stripe_calls)

    def table_write_units(self) -> Counter[str]:
        units: Counter[str] = Counter()
        for (table, _), n in self.item_write_units.items():
            units[table] += n
        return units

    def calls(self, service: str, action: str | None = None) -> int:
        return sum(n for (s, a), n in self.aws.items() if s == service and (action is None or a == action))


def scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def execution_arn(stack: Stack, order_id: str) -> str:
    return stack.cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + order_id


def warm_up(stack: Stack) -> None:
    """One payment first, so that every function is loaded and the secret is cached, as in steady state."""
    run_scenario(stack.cloud, stack.stripe, scenario("succeeded"), order_id=f"warm-up-{uuid.uuid4().hex[:8]}")


def measure_paths(stack: Stack, progress: Callable[[str], None]) -> dict[str, PathCounts]:
    """Every path once on this stack (under its CaptureMethod), after a warm-up payment."""
    warm_up(stack)
    paths = {}
    for path in PATHS:
        paths[path] = counts = measure_path(stack, path)
        progress(f"  {path}: {counts.final_state}, {counts.transitions} transitions")
    return paths


def measure_path(stack: Stack, path: str) -> PathCounts:
    cloud, stripe, recorder = stack.cloud, stack.stripe, stack.recorder
    harness = threading.get_ident()
    marks = len(recorder.calls), len(cloud.invocations), len(stripe.requests), len(stripe.deliveries)
    log_mark = len(stack.logs.getvalue())
    outcome = run_scenario(cloud, stripe, scenario(PATHS[path]))
    time.sleep(0.2)  # a webhook answered after the execution ended is still this payment's
    stripe.wait_for_deliveries(timeout=10)
    every_call = recorder.calls[marks[0] :]
    calls = [c for c in every_call if c.thread != harness]
    invocations = cloud.invocations[marks[1] :]
    history = cloud.history(execution_arn(stack, outcome.order_id))
    sizes = _item_sizes(stack, outcome.order_id)
    durations: dict[str, list[float]] = {}
    for invocation in invocations:
        durations.setdefault(invocation.function, []).append(invocation.seconds * 1000)
    return PathCounts(
        path=path,
        scenario=PATHS[path],
        capture_method=outcome.capture_method,
        final_state=outcome.final_state,
        ok=outcome.ok,
        states=[e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")],
        invocations=Counter(i.function for i in invocations),
        local_ms={name: sum(values) / len(values) for name, values in durations.items()},
        aws=Counter((c.service, c.action) for c in calls),
        dynamodb_reads=sum(1 for c in calls if c.service == "dynamodb" and c.action in DYNAMODB_READS),
        dynamodb_writes=sum(1 for c in calls if c.service == "dynamodb" and c.action in DYNAMODB_WRITES),
        write_units=sum(_write_units(c, sizes) for c in calls if c.service == "dynamodb"),
        read_units=sum(_read_units(c, sizes) for c in calls if c.service == "dynamodb"),
        direct_dynamodb_tasks=sum(
            1
            for e in history
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "dynamodb"
        ),
        stripe_calls=[f"{r.method} {_route(r.path)}" for r in stripe.requests[marks[2] :]],
        browser_stripe_calls=sum(1 for r in stripe.requests[marks[2] :] if r.publishable),
        deliveries=Counter(d.type for d in stripe.deliveries[marks[3] :] if d.error != "dropped"),
        log_bytes=len(stack.logs.getvalue()) - log_mark,
        item_bytes=sizes,
        start_executions=sum(1 for c in every_call if (c.service, c.action) == ("stepfunctions", "StartExecution")),
        item_write_units=_item_write_units(calls, sizes, {v: k for k, v in stack.cloud.template.physical.items()}),
    )


def _route(path: str) -> str:
    """/v1/payment_intents/pi_123/cancel -> /v1/payment_intents/{id}/cancel (any object id: pi_, cus_, evt_, ...)"""
    return "/".join("{id}" if re.fullmatch(r"[a-z]{2,4}_\w+", part) else part for part in path.split("/"))


# -- DynamoDB request units ---------------------------------------------------------------------
# A write costs one write request unit per KB of the item (the larger of before and after), a
# transactional write two; a strongly consistent read one read unit per 4 KB. Each item is priced
# at its size at the end of the payment, an upper bound: the order record grows with its history.


def _item_sizes(stack: Stack, order_id: str) -> dict[str, int]:
    client = boto3.client("dynamodb")
    physical = stack.cloud.template.physical
    sizes: dict[str, int] = {}
    order = client.get_item(TableName=physical["OrdersTable"], Key={"orderId": {"S": order_id}}).get("Item", {})
    sizes[physical["OrdersTable"]] = dynamodb_item_size(order)
    payments = [
        client.get_item(TableName=physical["PaymentsTable"], Key={"paymentIntentId": {"S": pi["id"]}}).get("Item", {})
        for pi in payment_intents_of(stack.stripe, order_id)
    ]
    sizes[physical["PaymentsTable"]] = max((dynamodb_item_size(item) for item in payments), default=0)
    sizes[physical["InventoryTable"]] = 64
    return sizes


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (typed, wire format)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return 1 + math.ceil(len(data.lstrip("-").replace(".", "")) / 2)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    return sum(len(str(v)) for v in data)  # SS, NS, BS


def _write_units(call: Any, sizes: dict[str, int]) -> int:
    if call.action not in DYNAMODB_WRITES:
        return 0
    units = sum(max(1, math.ceil(sizes.get(table, 1024) / 1024)) for table in call.tables)
    return 2 * units if call.action == "TransactWriteItems" else units


def _item_write_units(calls: list[Any], sizes: dict[str, int], logical: dict[str, str]) -> Counter[tuple[str, str]]:
    """Write units on each item, by (table logical id, partition key): 1 per KB, 2 per KB in a transaction."""
    units: Counter[tuple[str, str]] = Counter()
    for call in calls:
        for table, key in call.written:
            per_kb = 2 if call.action == "TransactWriteItems" else 1
            units[(logical.get(table, table), key)] += per_kb * max(1, math.ceil(sizes.get(table, 1024) / 1024))
    return units


def _read_units(call: Any, sizes: dict[str, int]) -> float:
    if call.action not in DYNAMODB_READS:
        return 0.0
    return sum(max(1, math.ceil(sizes.get(table, 4096) / 4096)) for table in call.tables)


# -- the webhook's critical path ----------------------------------------------------------------


@dataclass
class WebhookPath:
    status: int
    result: str
    calls: list[str]  # AWS requests made while handling the event, in order
    event: str  # its type


def webhook_critical_path(stack: Stack) -> WebhookPath:
    """AWS requests made while handling the event that resumes a payment whose task token is stored.

    That event is payment_intent.amount_capturable_updated under CaptureMethod manual (the card is
    authorised), payment_intent.succeeded under automatic. Warm (run after a payment): the function
    is loaded and the secret cached. The event is held back by the local Stripe, signed as Stripe
    signs it, and handed to the function on this thread, so that only its own requests are counted
    while the execution carries on in its threads.
    """
    cloud, stripe, recorder = stack.cloud, stack.stripe, stack.recorder
    order_id = f"webhook-path-{uuid.uuid4().hex[:8]}"
    stripe.set_delivery(hold=True)
    try:
        arn = cloud.start_payment(order_for(scenario("succeeded"), order_id))
        event = _wait_for_stored_token(stack, order_id)
    finally:
        stripe.set_delivery()
    body = json.dumps(event, indent=2)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign_payload(body, SIGNING_SECRET),
    }
    me, mark = threading.get_ident(), len(recorder.calls)
    response, error = cloud.invoke_function(
        "StripeWebhookFunction", http_api_event("POST", "/webhooks/stripe", headers, body.encode())
    )
    calls = [f"{c.service}:{c.action}" for c in recorder.calls[mark:] if c.thread == me]
    cloud.wait_for(arn, timeout=30)
    if error is not None or response is None:
        raise RuntimeError(f"the webhook failed: {error}")
    result = json.loads(response["body"]).get("result", "")
    return WebhookPath(int(response["statusCode"]), result, calls, event["type"])


def _wait_for_stored_token(stack: Stack, order_id: str) -> dict[str, Any]:
    table = stack.cloud.table("PaymentsTable")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for payment_intent in payment_intents_of(stack.stripe, order_id):
            item = table.get_item(Key={"paymentIntentId": payment_intent["id"]}, ConsistentRead=True).get("Item")
            if item and item.get("taskToken"):
                return next(
                    e for e in list(stack.stripe.events)
                    if e["type"] in RESUMING_EVENTS and e["data"]["object"]["id"] == payment_intent["id"]
                )  # fmt: skip
        time.sleep(0.05)
    raise TimeoutError(f"no task token stored for {order_id}")


# -- throughput ---------------------------------------------------------------------------------


@dataclass
class Throughput:
    target: int
    finished: int
    succeeded: int
    seconds: float
    window: int
    deadline: float

    @property
    def per_second(self) -> float:
        return self.finished / self.seconds if self.seconds else 0.0


def throughput(stack: Stack, payments: int, window: int, deadline: float, drain: float = 60) -> Throughput:
    """Card payments (pm_card_visa) end to end, at most `window` in flight.

    New payments start until `payments` have started or `deadline` seconds have passed; then the
    ones in flight finish (at most `drain` seconds more). Payments per second is over the whole run.
    """
    client = boto3.client("stepfunctions")
    card, prefix = scenario("succeeded"), f"throughput-{uuid.uuid4().hex[:6]}"
    started_at, started = time.monotonic(), 0

    def running() -> int:
        pages = client.get_paginator("list_executions").paginate(
            stateMachineArn=stack.cloud.state_machine_arn, statusFilter="RUNNING"
        )
        return sum(1 for page in pages for e in page["executions"] if e["name"].startswith(prefix))

    in_flight = 0
    while started < payments and time.monotonic() - started_at < deadline:
        for _ in range(window - in_flight):
            if started < payments:
                stack.cloud.start_payment(order_for(card, f"{prefix}-{started:05d}"))
                started += 1
        time.sleep(0.5)
        in_flight = running()
    drain_until = time.monotonic() + drain
    while in_flight and time.monotonic() < drain_until:
        time.sleep(0.5)
        in_flight = running()
    seconds = time.monotonic() - started_at
    statuses: Counter[str] = Counter()
    for page in client.get_paginator("list_executions").paginate(stateMachineArn=stack.cloud.state_machine_arn):
        statuses.update(e["status"] for e in page["executions"] if e["name"].startswith(prefix))
    finished = sum(n for status, n in statuses.items() if status in FINAL_STATUSES)
    return Throughput(payments, finished, statuses["SUCCEEDED"], seconds, window, deadline)
