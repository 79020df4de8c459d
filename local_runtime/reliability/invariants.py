"""The checks: an order's end against Stripe's final word (lost, double charged, unexpected status), its money after
the reconciler ran (orphaned, wrongly refunded), second starts of it (duplicate orders), and the stock."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_runtime.reliability.settings import STOCK
from local_runtime.reliability.stack import Stack
from local_runtime.scenarios import authorisation_problems, final_state

# What the one path for Stripe's events may never answer a genuine event of ours, whichever way it came in (by
# webhook, MALFORMED is a 400 too): the event would be dropped.
NEVER_ANSWERED = frozenset({"malformed", "not_ours"})
# Final state -> the order status that tells the same story.
ORDER_STATUS_OF = {
    "PaymentSucceeded": "fulfilled",
    "Refunded": "refunded",
    "PaymentFailed": "failed",
    "PaymentCanceled": "canceled",
    "PaymentTimedOut": "timed_out",
    "PaymentRejected": "failed",
    "OutOfStock": "out_of_stock",
    "AuthorizationExpired": "authorization_expired",
}
UNPAID_FINAL_STATES = frozenset({
    "PaymentFailed", "PaymentCanceled", "PaymentTimedOut", "PaymentRejected", "OutOfStock", "AuthorizationExpired",
})  # fmt: skip
PAID_FINAL_STATES = frozenset({"PaymentSucceeded", "Refunded"})
NEEDS_ATTENTION = "NeedsAttention"
DECIDED = frozenset(ORDER_STATUS_OF.values())  # order statuses that say how the payment ended
# CaptureMethod manual (docs/capture.md): an order whose card Stripe authorised is captured once its stock is
# reserved and fulfilled, or released for want of stock (OutOfStock) or of time (AuthorizationExpired), or, past the
# parking, left to the reconciler. Settling a failed or timed-out attempt never cancels an authorisation: only a
# customer who authorises as our cancel of the unpaid PaymentIntent lands can see it released.
AUTHORISED_ENDS = frozenset({"PaymentSucceeded", "OutOfStock", "AuthorizationExpired", NEEDS_ATTENTION})
# What an order the stock cannot fill ends in, by CaptureMethod, once the customer's card is authorised (manual: the
# authorisation released, nothing charged, nothing refunded) or charged (automatic: refunded).
OUT_OF_STOCK_ENDS = {"manual": "OutOfStock", "automatic": "Refunded"}


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
    orphaned: list[str] = field(default_factory=list)
    wrongly_refunded: list[str] = field(default_factory=list)
    duplicate_orders: list[str] = field(default_factory=list)
    # Authorise, reserve, capture (`scenarios.AUTHORISATION_INVARIANTS`), judged once the reconciler is done
    captured_unreserved: list[str] = field(default_factory=list)
    out_of_stock_charged: list[str] = field(default_factory=list)
    held_authorisations: list[str] = field(default_factory=list)
    stranded_reservations: list[str] = field(default_factory=list)
    capture_method: str = ""  # the stack's CaptureMethod
    faults_fired: int = 0
    path: list[str] = field(default_factory=list)  # the states entered, and how the execution failed
    latency: float = 0.0  # from the execution's start to its end
    destination: str = "webhook"  # Stripe's event destination for the order
    deliveries: Counter[str] = field(default_factory=Counter)  # see `delivery_counts`

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        return (
            [f"lost: {p}" for p in self.lost]
            + [f"double charged: {p}" for p in self.double_charged]
            + [f"unexpected status: {p}" for p in self.unexpected_status]
            + [f"orphaned: {p}" for p in self.orphaned]
            + [f"wrongly refunded: {p}" for p in self.wrongly_refunded]
            + [f"duplicate order: {p}" for p in self.duplicate_orders]
            + [f"captured without a reservation: {p}" for p in self.captured_unreserved]
            + [f"out of stock, charged: {p}" for p in self.out_of_stock_charged]
            + [f"authorisation held: {p}" for p in self.held_authorisations]
            + [f"reservation left: {p}" for p in self.stranded_reservations]
        )


def judge(
    stack: Stack, name: str, order_id: str, arn: str, seconds: float, *, finished: bool,
    outage_outlasted_parking: bool = False, customer_races_cancel: bool = False,
) -> Verdict:  # fmt: skip
    """Hold the order's end against Stripe's final word, and against what the stack's CaptureMethod does. See
    docs/reliability.md for the rules.

    `outage_outlasted_parking`: an outage that lasted until the execution ended failed one of its requests, so
    NeedsAttention is the end to expect (and the only one that may name it). `customer_races_cancel`: the customer
    acts on the checkout page (3-D Secure, another card), and may authorise as our cancel lands."""
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
        capture_method=stack.capture_method,
    )
    if len(history) > 1:
        ended = datetime.fromisoformat(history[-1]["timestamp"]) - datetime.fromisoformat(history[0]["timestamp"])
        verdict.latency = ended.total_seconds()
    verdict.path = path_of(history)

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
    if end == NEEDS_ATTENTION and not outage_outlasted_parking:
        verdict.unexpected_status.append("ended NeedsAttention, but no outage outlasted the parking")
    if outage_outlasted_parking and end != NEEDS_ATTENTION:
        verdict.unexpected_status.append(f"ended {end} though an outage outlasted the parking")
    if succeeded:
        paid = succeeded[0]
        refunds = [r for r in stripe.refunds.values() if r.get("payment_intent") == paid["id"]]
        if end not in PAID_FINAL_STATES | {NEEDS_ATTENTION}:
            verdict.lost.append(f"Stripe charged {paid['id']} but the execution ended in {end}")
        if end == "PaymentSucceeded" and refunds:
            verdict.lost.append("ended PaymentSucceeded but the payment was refunded")
        if end == "Refunded" and sum(r["amount"] for r in refunds) != paid["amount"]:
            verdict.lost.append(f"ended Refunded but Stripe refunded {sum(r['amount'] for r in refunds)}")
        if status == "refunded" and (order.get("fulfilledAt") or "fulfilled" in _statuses(order)):
            verdict.lost.append("fulfilled and refunded: the goods went out and the money came back")
        if status == "fulfilled" and order.get("paymentIntentId") != paid["id"]:
            verdict.lost.append(f"fulfilled for {order.get('paymentIntentId')}, not the paid {paid['id']}")
    elif end == NEEDS_ATTENTION:  # nobody decided: the order must not say otherwise (a PaymentIntent may stay open)
        if status in DECIDED:
            verdict.lost.append(f"ended {end} unpaid but the order is {status}")
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
    judge_capture_method(stack, verdict, order, pis, customer_races_cancel=customer_races_cancel)

    # Genuine Stripe deliveries (the courier's, and FakeStripe's own as `destinations` passed them on) are answered
    # 200, or 503 when we are (made) unwell: never 4xx or 500.
    records = stack.courier.records_of(order_id)
    for record in records:
        if record.status is not None and record.status not in (200, 503):
            verdict.unexpected_status.append(f"{record.type} {record.event_id} answered {record.status}")
        if record.by_bus and record.attempt > 0 and record.error:
            verdict.unexpected_status.append(f"{record.type} {record.event_id}: EventBridge refused it: {record.error}")
    # By the bus, no status: every message is handled in the end, one that failed is reported failed (so that it
    # comes again), and the function that reads the queue never crashes (an unhandled error: the whole batch again).
    messages = stack.courier.bus_messages_of(order_id)
    delivered = {record.event_id for record in records if record.attempt > 0} | {m.event_id for m in messages}
    answered = stack.answers_to(delivered)
    for message in messages:
        if not message.handled:
            reads = ", ".join(message.reads) or "never"
            verdict.lost.append(f"{message.type} {message.event_id} put on the bus, never handled (read: {reads})")
        for crash in sorted({read for read in message.reads if read.startswith("crashed")}):
            verdict.unexpected_status.append(f"{message.type} {message.event_id}: the StripeEvents function {crash}")
    for event_id in {m.event_id for m in messages}:
        raised = sum(answer.startswith("raised ") for answer in answered.get(event_id, []))
        reported = sum(read != "handled" for m in messages if m.event_id == event_id for read in m.reads)
        if raised > reported:
            verdict.lost.append(
                f"{event_id} failed {raised} times on its way in from the bus, its message was reported failed "
                f"{reported} times: a message that failed must come again"
            )
    for event_id, answers in answered.items():
        for answer in sorted(NEVER_ANSWERED.intersection(answers)):
            verdict.unexpected_status.append(f"{event_id} answered {answer}: a genuine event of ours, dropped")
    for function, errored_order, error in list(stack.function_errors):
        if errored_order == order_id and "Webhook" in function:
            trace = " | ".join(line.strip().replace("\n", " ") for line in error.get("stackTrace", []))
            verdict.path.append(f"[webhook raised {error.get('errorType')}: {error.get('errorMessage')} at {trace}]")
    return verdict


def judge_capture_method(
    stack: Stack, verdict: Verdict, order: dict[str, Any], pis: list[dict[str, Any]], *, customer_races_cancel: bool
) -> None:
    """What the stack's CaptureMethod does (docs/capture.md): manual authorises a card and captures it only once the
    stock is reserved; automatic never holds one. An order the stock cannot fill ends OutOfStock once authorised,
    Refunded once charged (`OUT_OF_STOCK_ENDS`)."""
    method, end = verdict.capture_method, verdict.final_state
    authorised = [pi for pi in pis if pi["id"] in stack.authorised()]
    charged = [pi for pi in pis if pi["status"] == "succeeded"]
    if method == "automatic" and authorised:
        verdict.unexpected_status.append(
            f"authorised {[pi['id'] for pi in authorised]} to capture later under CaptureMethod automatic"
        )
    if method == "manual":
        verdict.unexpected_status += [
            f"{pi['id']} charged at once under CaptureMethod manual: a card is authorised first"
            for pi in charged
            if pi not in authorised and _paid_by(stack, pi) == "card"
        ]
        released_as_the_customer_paid = customer_races_cancel and all(pi["status"] == "canceled" for pi in authorised)
        if authorised and end not in AUTHORISED_ENDS and not released_as_the_customer_paid:
            verdict.unexpected_status.append(
                f"authorised, yet ended {end}: an authorisation is captured once its stock is reserved, or released"
            )
    if not _fillable(order) and end != NEEDS_ATTENTION and (authorised or charged):
        # Authorised (a card under manual): released. Charged at once (automatic; a bank debit under either): refunded.
        expected = OUT_OF_STOCK_ENDS["manual" if authorised else "automatic"]
        if end != expected:
            verdict.unexpected_status.append(f"out of stock under CaptureMethod {method}: ended {end}, not {expected}")


def judge_authorisations(stack: Stack, verdict: Verdict) -> None:
    """Once nothing will capture or release any more (the execution ended, the reconciler ran on its end and swept):
    the demo's authorise-and-capture invariants (`scenarios.authorisation_problems`), and no authorisation captured
    for an order the stock could never fill."""
    order = stack.order(verdict.order_id)
    pis = stack.payment_intents(verdict.order_id)
    authorised = stack.authorised()
    for invariant, found in authorisation_problems(order, pis, authorised).items():
        getattr(verdict, invariant).extend(found)
    if not _fillable(order):
        verdict.out_of_stock_charged += [
            f"captured {pi['id']} though the stock could never fill the order"
            for pi in pis
            if pi["status"] == "succeeded" and pi["id"] in authorised
        ]


def _fillable(order: dict[str, Any]) -> bool:
    """Whether the stock could fill every line of the order (all but LAST-ONE, of which there is none)."""
    return all(STOCK.get(item["sku"], 0) >= int(item["quantity"]) for item in order.get("items", []))


def _paid_by(stack: Stack, pi: dict[str, Any]) -> str:
    """The payment method type of the PaymentIntent's latest charge (card, sepa_debit, us_bank_account)."""
    charge = stack.stripe.charges.get(str(pi.get("latest_charge"))) or {}
    return str((charge.get("payment_method_details") or {}).get("type"))


def delivery_counts(stack: Stack, order_id: str) -> Counter[str]:
    """How Stripe's deliveries of the order went: by webhook, requests made and those answered 503 (and delivered
    again); by the bus, messages put, times the function read them, reads that failed (the message came again) and
    reads of a message handled already (SQS delivers at least once)."""
    counts: Counter[str] = Counter()
    for record in stack.courier.records_of(order_id):
        if record.attempt > 0 and not record.by_bus:
            counts["requests"] += 1
            counts["answered 503"] += record.status == 503
    for message in stack.courier.bus_messages_of(order_id):
        counts["put"] += 1
        counts["read"] += len(message.reads)
        counts["failed"] += sum(read != "handled" for read in message.reads)
        counts["handled again"] += max(0, message.reads.count("handled") - 1)
    return counts


def path_of(history: list[dict[str, Any]]) -> list[str]:
    """The states entered and every failure, a run of the same ones counted once (a step retried, say)."""
    path: list[str] = []
    for event in history:
        if event["type"].endswith("StateEntered"):
            path.append(event["stateEnteredEventDetails"]["name"])
        elif event["type"] in ("ExecutionFailed", "TaskFailed", "LambdaFunctionFailed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            path.append(f"[{event['type']} {details.get('error')}: {_message(details.get('cause'))}]")
    runs = [(step, len(list(same))) for step, same in itertools.groupby(path)]
    return [step if count == 1 else f"{step} x{count}" for step, count in runs]


def _message(cause: Any) -> str:
    """A failure's message without what differs from one try to the next (request ids, stack traces)."""
    text = str(cause)
    with contextlib.suppress(ValueError, TypeError, KeyError):
        text = str(json.loads(text)["errorMessage"])
    return text.split(" (Service:")[0][:120]


def _statuses(order: dict[str, Any]) -> list[str]:
    return [str(entry.get("status")) for entry in order.get("history", [])]


def judge_money(stack: Stack, verdict: Verdict, *, swept: bool) -> None:
    """After the reconciler ran (on the execution's end, then a scheduled sweep): no paid order left behind, no good
    order's money given back, and nothing but NeedsAttention left for the reconciler to complete."""
    order = stack.order(verdict.order_id)
    verdict.order_status = str(order.get("status", "missing"))
    pis = stack.payment_intents(verdict.order_id)
    succeeded = [pi for pi in pis if pi["status"] == "succeeded"]
    verdict.orphaned += orphaned_payments(stack, order, succeeded)
    if verdict.orphaned and not swept:
        verdict.orphaned.append("(the last sweep failed)")
    verdict.wrongly_refunded += wrong_refunds(stack, order, pis)
    judge_authorisations(stack, verdict)
    if verdict.final_state != NEEDS_ATTENTION and any(e.get("by") == "reconciler" for e in order.get("history", [])):
        verdict.lost.append(f"ended {verdict.final_state}, yet the reconciler had to complete the paid order")


def _refunded(stack: Stack, pi_id: str) -> int:
    return sum(int(r["amount"]) for r in list(stack.stripe.refunds.values()) if r.get("payment_intent") == pi_id)


def orphaned_payments(stack: Stack, order: dict[str, Any], succeeded: list[dict[str, Any]]) -> list[str]:
    """A succeeded PaymentIntent whose order is neither fulfilled with it nor refunded (it in full)."""
    return [
        f"{pi['id']} succeeded; the order is {order.get('status', 'missing')}, neither fulfilled with it nor refunded"
        for pi in succeeded
        if not (order.get("fulfilledAt") and order.get("paymentIntentId") == pi["id"])
        and _refunded(stack, pi["id"]) < int(pi["amount"])
    ]


def wrong_refunds(stack: Stack, order: dict[str, Any], pis: list[dict[str, Any]]) -> list[str]:
    """A refund that follows neither a lack of stock nor a stray payment: a good order's money given back.

    Out of stock: a line the stock could never fill. Stray: a PaymentIntent its attempt is not bound to, or not the
    one the order was fulfilled with."""
    if not _fillable(order):
        return []
    problems = []
    for pi in pis:
        attempt = (order.get("attempts") or {}).get(str(pi["metadata"].get("attempt")), {})
        bound = attempt.get("paymentIntentId") == pi["id"]
        fulfilled_with_another = order.get("fulfilledAt") and order.get("paymentIntentId") != pi["id"]
        if _refunded(stack, pi["id"]) and bound and not fulfilled_with_another:
            problems.append(f"{pi['id']} refunded though the order had stock and it was the attempt's one payment")
    return problems


def second_start_problems(stack: Stack, order_id: str, arn: str, order_before: dict[str, Any] | None) -> list[str]:
    """What a second execution of an order did beyond ending: payment steps, a PaymentIntent, a changed order.
    `order_before`: the order as it was when the second one started after the first had ended."""
    status, history = stack.execution(arn)
    ran = {e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "TaskStateEntered"}
    problems = [f"it ran {step}" for step in sorted(ran - {"AcceptOrder"})]
    if status == "RUNNING":
        problems.append(f"still running in {final_state(history)}")
    problems += [
        f"it created {pi['id']}" for pi in stack.payment_intents(order_id) if pi["metadata"].get("execution_id") == arn
    ]
    if order_before is not None and stack.order(order_id) != order_before:
        problems.append("it changed the order")
    return problems


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
