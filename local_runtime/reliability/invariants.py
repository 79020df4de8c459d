"""The checks: an order's end against Stripe's final word (lost, double charged, unexpected status), and the stock."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_runtime.reliability.stack import Stack
from local_runtime.scenarios import final_state

# Final state -> the order status that tells the same story.
ORDER_STATUS_OF = {
    "PaymentSucceeded": "fulfilled",
    "Refunded": "refunded",
    "PaymentFailed": "failed",
    "PaymentCanceled": "canceled",
    "PaymentTimedOut": "timed_out",
    "PaymentRejected": "failed",
}
UNPAID_FINAL_STATES = frozenset({"PaymentFailed", "PaymentCanceled", "PaymentTimedOut", "PaymentRejected"})
PAID_FINAL_STATES = frozenset({"PaymentSucceeded", "Refunded"})


@dataclass
class Verdict:
    name: str
    order_id: str
    final_state: str
    execution_status: str
    order_status: str
    stripe_truth: str
    lost: list[str] = field(default_factory=list)
    double_charged: list[str] = field(default_factory=list)
    unexpected_status: list[str] = field(default_factory=list)
    faults_fired: int = 0
    path: list[str] = field(default_factory=list)  # the states entered, and how the execution failed
    latency: float = 0.0  # from the execution's start to its end

    @property
    def ok(self) -> bool:
        return not (self.lost or self.double_charged or self.unexpected_status)

    def problems(self) -> list[str]:
        return (
            [f"lost: {p}" for p in self.lost]
            + [f"double charged: {p}" for p in self.double_charged]
            + [f"unexpected status: {p}" for p in self.unexpected_status]
        )


def judge(stack: Stack, name: str, order_id: str, arn: str, seconds: float, *, finished: bool) -> Verdict:
    """Hold the order's end against Stripe's final word. See docs/reliability.md for the rules."""
    stripe = stack.stripe
    execution_status, history = stack.execution(arn)
    end = final_state(history)
    order = stack.order(order_id)
    status = str(order.get("status", "missing"))
    pis = stack.payment_intents(order_id)
    succeeded = [pi for pi in pis if pi["status"] == "succeeded"]
    verdict = Verdict(
        name=name,
        order_id=order_id,
        final_state=end,
        execution_status=execution_status,
        order_status=status,
        stripe_truth=",".join(f"{pi['metadata'].get('attempt')}:{pi['status']}" for pi in pis) or "no PaymentIntent",
    )
    if len(history) > 1:
        ended = datetime.fromisoformat(history[-1]["timestamp"]) - datetime.fromisoformat(history[0]["timestamp"])
        verdict.latency = ended.total_seconds()
    for event in history:
        if event["type"].endswith("StateEntered"):
            verdict.path.append(event["stateEnteredEventDetails"]["name"])
        elif event["type"] in ("ExecutionFailed", "TaskFailed", "LambdaFunctionFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            verdict.path.append(f"[{event['type']} {details.get('error')}: {str(details.get('cause'))[:160]}]")

    # At most one charge: one PaymentIntent per attempt, one succeeded PaymentIntent per order.
    attempts = Counter(pi["metadata"].get("attempt") for pi in pis)
    for attempt, count in attempts.items():
        if count > 1:
            verdict.double_charged.append(f"{count} PaymentIntents for attempt {attempt}")
    if len(succeeded) > 1:
        verdict.double_charged.append(f"{len(succeeded)} succeeded PaymentIntents: {[pi['id'] for pi in succeeded]}")

    # The execution ends, in the state Stripe's final word calls for.
    if not finished or execution_status == "RUNNING":
        verdict.lost.append(f"still {execution_status} in {end} after {seconds:.0f}s")
        return verdict
    if succeeded:
        paid = succeeded[0]
        refunds = [r for r in stripe.refunds.values() if r.get("payment_intent") == paid["id"]]
        if end not in PAID_FINAL_STATES:
            verdict.lost.append(f"Stripe charged {paid['id']} but the execution ended in {end}")
        if status not in ("fulfilled", "refunded"):
            verdict.lost.append(f"paid but the order is {status}: neither fulfilled nor refunded")
        if end == "PaymentSucceeded" and refunds:
            verdict.lost.append("ended PaymentSucceeded but the payment was refunded")
        if end == "Refunded" and sum(r["amount"] for r in refunds) != paid["amount"]:
            verdict.lost.append(f"ended Refunded but Stripe refunded {sum(r['amount'] for r in refunds)}")
        if status == "refunded" and (order.get("fulfilledAt") or "fulfilled" in _statuses(order)):
            verdict.lost.append("fulfilled and refunded: the goods went out and the money came back")
        if status == "fulfilled" and order.get("paymentIntentId") != paid["id"]:
            verdict.lost.append(f"fulfilled for {order.get('paymentIntentId')}, not the paid {paid['id']}")
    else:
        if end not in UNPAID_FINAL_STATES:
            verdict.lost.append(f"nothing was charged but the execution ended in {end}")
        if status in ("fulfilled", "refunded"):
            verdict.lost.append(f"order {status} without a succeeded PaymentIntent")
        for pi in pis:
            if pi["status"] != "canceled":
                verdict.lost.append(f"{pi['id']} left {pi['status']}: it could still be paid")

    # The order record tells the same story as the execution.
    expected_status = ORDER_STATUS_OF.get(end)
    if expected_status is not None and status != expected_status:
        verdict.lost.append(f"execution ended in {end} but the order is {status}")
    entries = [entry.get("status") for entry in order.get("history", [])]
    if entries and entries[-1] != status:
        verdict.lost.append(f"order status {status} but its history ends with {entries[-1]}")
    if entries.count("fulfilled") > 1:
        verdict.lost.append("fulfilled twice")
    if status == "refunded" and not any(e.get("refundId") for e in order.get("history", [])):
        verdict.lost.append("refunded without a refund id in the order history")

    # Genuine Stripe deliveries are answered 200, or 503 when we are (made) unwell: never 4xx or 500.
    for record in stack.courier.records_of(order_id):
        if record.status is not None and record.status not in (200, 503):
            verdict.unexpected_status.append(f"{record.type} {record.event_id} answered {record.status}")
    for function, errored_order, error in list(stack.function_errors):
        if errored_order == order_id and "Webhook" in function:
            trace = " | ".join(line.strip().replace("\n", " ") for line in error.get("stackTrace", []))
            verdict.path.append(f"[webhook raised {error.get('errorType')}: {error.get('errorMessage')} at {trace}]")
    events = stack.courier.event_ids_of(order_id)
    for delivery in list(stripe.deliveries):  # FakeStripe's own deliveries (plan "stripe")
        if delivery.event_id in events and delivery.status not in (None, 200, 503):
            verdict.unexpected_status.append(f"{delivery.type} {delivery.event_id} answered {delivery.status}")
    return verdict


def _statuses(order: dict[str, Any]) -> list[str]:
    return [str(entry.get("status")) for entry in order.get("history", [])]


def stock_problems(stack: Stack, verdicts: list[Verdict], start: dict[str, int]) -> list[str]:
    """Stock went down by exactly the quantities of the orders that were fulfilled, once each."""
    sold: Counter[str] = Counter()
    for verdict in verdicts:
        order = stack.order(verdict.order_id)
        if order.get("fulfilledAt"):
            for item in order.get("items", []):
                sold[item["sku"]] += int(item["quantity"])
    now = stack.stock()
    problems = []
    for sku, available in start.items():
        if available - now[sku] != sold[sku]:
            problems.append(f"{sku}: stock went down by {available - now[sku]}, fulfilled orders took {sold[sku]}")
    return problems
