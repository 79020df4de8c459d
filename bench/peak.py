"""The peak run: ten times what the capacity model says the stack sustains, for a bounded time, and every order checked.

The local stack runs with its quotas on at `--scale` (`Quotas.scaled(s)`) and its own Stripe budget
(StripeRequestsPerSecond) scaled alike (`quotas.parameters()`), so that the local binding limit is the production one.
The model (bench/capacity.py `sustained_rate`), fed the per-payment usage of the run's path mix (the success and
out-of-stock paths, measured on a stack without quotas first) and the scaled quotas, predicts the sustained rate;
the run offers `--overload` (10) times that through the merchant API (`POST /payments`, SigV4-signed as the e2e tests
sign it) for `--window` seconds. Every order buys the hot SKU and one of three others; the hot SKU has stock for all
but `--short` orders, so exactly that many must end `OutOfStock` and the rest `PaymentSucceeded`.

    python -m bench.peak        # about 3 minutes; prints the `peak:` line, rewrites its section of BENCHMARKS.md

Definitions (the bench line's fields):
- peak_offered_per_s: orders POSTed over the offering window: (orders - 1) / (last POST - first POST).
- peak_completed_per_s: payments that ended in their correct final state over the busy period, from the first POST to
  the last completion. The backlog lasts until the end, so the binding quota is busy throughout: this is its rate
  divided by what one payment uses of it, what the model predicts. Not the middle of the completions: a burst's
  payments all make their first Stripe request (the create) early and their last late, so completions in the middle
  of the run spend requests made before it (1.14/s there against 0.98/s over the busy period, in one run).
- failed_by_throttle: orders a throttle kept from their correct final state: a POST answered 5xx or not at all, and
  executions that ended elsewhere (NeedsAttention, a Fail, timed out) with a throttling error in their history.
- max_wait_s: the longest an order waited for its outcome, from its POST to its execution's end (queue, Stripe budget,
  Retry and park included). The queue's own wait (POST to the execution's start) is reported beside it.
"""

import argparse
import math
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench import capacity
from bench.payments import PathCounts, _route
from local_runtime.quotas import Quotas
from local_runtime.template import ROOT

BEGIN = "<!-- peak:begin: written by `make bench` or `python -m bench.peak`; edit outside these markers -->"
END = "<!-- peak:end -->"
SCALE = 0.15  # the stack's Stripe budget 3 requests/s: about 1 payment/s, well under what this machine does (~7/s)
OVERLOAD = 10.0
WINDOW_SECONDS = 10.0
SHORT = 4  # orders the hot SKU has no stock for
OTHER_SKUS = ("PEAK-MUG", "PEAK-TEA", "PEAK-CUP")
TOLERANCE = 0.25  # the model's prediction must be within 25 % of the measured rate
# Errors that name a throttle or the waiting it causes (our typed transient errors and AWS's and Stripe's own).
THROTTLE_ERRORS = ("StripeUnavailable", "AwsUnavailable", "Throttling", "ThroughputExceeded", "rate_limit",
                   "TooManyRequests", "NeedsAttention")  # fmt: skip
EXPECTED = {"PaymentSucceeded": "fulfilled", "OutOfStock": "out_of_stock"}  # final state -> order record status


@dataclass
class Order:
    order_id: str
    skus: tuple[str, ...]
    posted_at: float  # wall time the POST was sent
    answer: int | None = None  # HTTP status; None: no answer
    queued: bool = False  # answered 202 "queued": StartExecution refused, the admission queue has it
    started_at: float | None = None  # the execution's start (wall time), None if it never started
    ended_at: float | None = None
    final_state: str = "(none)"
    order_status: str = ""
    charges: int = 0  # captured charges
    refunds: int = 0
    parked: bool = False  # went through a Park state at least once
    errors: tuple[str, ...] = ()  # errors and causes in its history (task failures, the execution's failure)

    @property
    def throttled(self) -> bool:
        return any(name in error for error in self.errors for name in THROTTLE_ERRORS)


@dataclass
class Verdict:
    offered: int
    offered_per_s: float
    completed: int  # ended in their correct final state
    completed_per_s: float  # over the busy period (busy_period_rate)
    failed_by_throttle: int
    max_wait_s: float
    max_start_wait_s: float
    queued: int
    parked: int
    final_states: Counter[str]
    wrong: list[str] = field(default_factory=list)  # what is not as it must be, one line each
    middle_per_s: float = 0.0  # completions a second over their middle 80 % (sustained_completion_rate), for contrast

    @property
    def ok(self) -> bool:
        return not self.wrong and self.failed_by_throttle == 0


def offered_rate(posted: Iterable[float]) -> float:
    times = sorted(posted)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0


def busy_period_rate(posted: Iterable[float], ended: Iterable[float]) -> float:
    """Completions a second from the first order offered to the last completion."""
    ends, first = list(ended), min(posted, default=0.0)
    return len(ends) / (max(ends) - first) if ends and max(ends) > first else 0.0


def middle_window(ended: Iterable[float], middle: float = 0.8) -> tuple[float, float, int]:
    """(from, to, completions in between) for the middle `middle` of the completions: from the ((1 - middle) / 2)-th
    to the ((1 + middle) / 2)-th percentile end time, t[i] to t[j], j - i completions."""
    times = sorted(ended)
    if len(times) < 2:
        return (times[0], times[0], 0) if times else (0.0, 0.0, 0)
    i = math.floor(len(times) * (1 - middle) / 2 + 1e-9)  # 1e-9: (1 - 0.8) / 2 is 0.0999..., not 0.1
    j = max(i + 1, math.ceil(len(times) * (1 + middle) / 2 - 1e-9) - 1)
    return times[i], times[j], j - i


def sustained_completion_rate(ended: Iterable[float], middle: float = 0.8) -> float:
    """Completions per second over the middle `middle` of them (`middle_window`)."""
    start, end, count = middle_window(ended, middle)
    if not count:
        return 0.0
    return count / (end - start) if end > start else math.inf


def judge(orders: list[Order], stock: Mapping[str, int], left: Mapping[str, int], hot: str, manual: bool) -> Verdict:
    """Each order against its correct final state; the stock against what was sold; the run's figures.

    The hot SKU (in every order) has stock for all but some: that many orders must end OutOfStock, never charged
    under manual capture, and every other order PaymentSucceeded, charged once; nothing refunded, nothing oversold."""
    wrong: list[str] = []
    short = max(0, len(orders) - stock[hot])
    states = Counter(order.final_state for order in orders)
    for order in orders:
        why = _wrong(order, manual)
        if why and not (order.throttled and order.final_state not in EXPECTED):
            wrong.append(f"{order.order_id}: {why}")
    if states["OutOfStock"] != short:
        wrong.append(f"{states['OutOfStock']} orders out of stock, {short} expected ({stock[hot]} {hot} in stock)")
    sold = Counter(sku for order in orders if order.final_state == "PaymentSucceeded" for sku in order.skus)
    for sku, available in stock.items():
        if left.get(sku) != available - sold[sku] or left.get(sku, 0) < 0:
            wrong.append(f"{sku}: {left.get(sku)} left, {available} - {sold[sku]} sold expected")
    completed = [o for o in orders if o.ended_at is not None and o.final_state in EXPECTED and not _wrong(o, manual)]
    waits = [o.ended_at - o.posted_at for o in orders if o.ended_at is not None]
    start_waits = [o.started_at - o.posted_at for o in orders if o.started_at is not None]
    failed = [o for o in orders if _failed_by_throttle(o)]
    return Verdict(
        offered=len(orders),
        offered_per_s=offered_rate(o.posted_at for o in orders),
        completed=len(completed),
        completed_per_s=busy_period_rate((o.posted_at for o in orders), (o.ended_at for o in completed if o.ended_at)),
        middle_per_s=sustained_completion_rate(o.ended_at for o in completed if o.ended_at is not None),
        failed_by_throttle=len(failed),
        max_wait_s=max(waits, default=0.0),
        max_start_wait_s=max(start_waits, default=0.0),
        queued=sum(1 for o in orders if o.queued),
        parked=sum(1 for o in orders if o.parked),
        final_states=states,
        wrong=wrong,
    )


def _failed_by_throttle(order: Order) -> bool:
    if order.answer is None or order.answer >= 500:
        return True  # lost at the door: the merchant has no payment and no queued order
    return order.final_state not in EXPECTED and order.throttled


def _wrong(order: Order, manual: bool) -> str:
    """Why the order is not in a correct final state ('' if it is). Which orders the hot SKU's stock runs out for is
    the race's to decide; `judge` checks how many."""
    if order.answer not in (200, 201, 202):
        return f"POST answered {order.answer}"
    if order.final_state not in EXPECTED:
        return f"ended {order.final_state} ({'; '.join(order.errors[-2:])})"
    if order.order_status != EXPECTED[order.final_state]:
        return f"ended {order.final_state}, its order record {order.order_status!r}"
    if order.refunds:
        return f"{order.refunds} refunds"
    charges = 1 if order.final_state == "PaymentSucceeded" else (0 if manual else 1)
    if order.final_state == "OutOfStock" and not manual:
        return ""  # automatic capture: charged, then refunded for want of stock (not this run's path)
    if order.charges != charges:
        return f"{order.charges} charges, {charges} expected"
    return ""


def mix_usage(paths: Mapping[str, PathCounts], weights: Mapping[str, float]) -> dict[str, float]:
    """What one payment of the run's mix uses of each quota: each path's usage weighted by its share of orders."""
    total = sum(weights.values())
    used: Counter[str] = Counter()
    for path, weight in weights.items():
        for key, value in capacity.usage(paths[path]).items():
            used[key] += value * weight / total  # type: ignore[assignment]
    return dict(used)


# -- the run ------------------------------------------------------------------------------------


@dataclass
class PeakRun:
    scale: float
    predicted_per_s: float
    binding: str
    verdict: Verdict
    window_s: float
    seconds: float  # the whole run, from the first POST to the last execution's end
    stripe_429: int
    aws_throttled: Counter[tuple[str, str]]
    command: str = "python -m bench.peak"
    budget_per_payment: float = 0.0  # the model's: Stripe requests one payment of the mix takes from the budget
    stripe_requests: Counter[str] = field(default_factory=Counter)  # the stack's (secret key), by endpoint
    stripe_per_s_middle: float = 0.0  # the stack's Stripe requests a second over the middle window

    @property
    def stripe_per_payment(self) -> float:
        ended = sum(n for state, n in self.verdict.final_states.items() if state in EXPECTED)
        return sum(self.stripe_requests.values()) / ended if ended else 0.0

    @property
    def ratio(self) -> float:
        return self.verdict.completed_per_s / self.predicted_per_s if self.predicted_per_s else math.inf

    @property
    def within_tolerance(self) -> bool:
        return abs(self.ratio - 1) <= TOLERANCE

    def fields(self) -> str:
        v = self.verdict
        return (f"peak_offered_per_s={v.offered_per_s:.2f} peak_completed_per_s={v.completed_per_s:.2f} "
                f"failed_by_throttle={v.failed_by_throttle} max_wait_s={v.max_wait_s:.1f}")  # fmt: skip

    def line(self) -> str:
        v = self.verdict
        flag = "" if self.within_tolerance else f" MODEL_OFF_BY_MORE_THAN_{TOLERANCE:.0%}"
        return (
            f"peak: scale={self.scale:g} {self.fields()} predicted_per_s={self.predicted_per_s:.2f} "
            f"ratio={self.ratio:.2f} binding={self.binding.replace(' ', '_')} orders={v.offered} "
            f"completed={v.completed} queued={v.queued} parked={v.parked} max_start_wait_s={v.max_start_wait_s:.1f} "
            f"stripe_per_s={self.stripe_per_s_middle:.2f} stripe_per_payment={self.stripe_per_payment:.2f}/"
            f"{self.budget_per_payment:.2f} wrong={len(v.wrong)}{flag}"
        )


def run(
    stack: Any, paths: Mapping[str, PathCounts], quotas: Quotas, progress: Callable[[str], None],
    overload: float = OVERLOAD, window: float = WINDOW_SECONDS, short: int = SHORT, drain: float = 600,
) -> PeakRun:  # fmt: skip
    """Offer `overload` x the model's rate for `window` seconds on `stack` (made with `quotas` and
    `quotas.parameters()`), wait for every order to end, and judge them."""
    from local_runtime.checkout import local_merchant_api
    from local_runtime.scenarios import final_state, order_input, payment_intents_of
    from web.merchant_api import MerchantApiError

    cloud, stripe = stack.cloud, stack.stripe
    success_only, _ = capacity.sustained_rate(capacity.usage(paths["success"]), quotas.model_limits())
    orders_n = max(short + 2, round(overload * success_only * window))
    weights = {"success": orders_n - short, "out of stock": short}
    predicted, binding = capacity.sustained_rate(mix_usage(paths, weights), quotas.model_limits())
    tag = uuid.uuid4().hex[:6]
    hot = f"PEAK-HOT-{tag}"
    others = tuple(f"{sku}-{tag}" for sku in OTHER_SKUS)
    stock = {hot: orders_n - short, **{sku: orders_n for sku in others}}
    inventory = cloud.table("InventoryTable")
    for sku, available in stock.items():
        inventory.put_item(Item={"sku": sku, "available": available})
    merchant = local_merchant_api(cloud)
    rate = orders_n / window
    progress(f"peak: {orders_n} orders in {window:g} s ({rate:.1f}/s, {overload:g} x the model's {predicted:.2f}/s, "
             f"bound by {binding}); {hot} in every order, {stock[hot]} in stock")  # fmt: skip
    requests_before, throttled_before = len(stripe.requests), Counter(cloud.aws.throttled)
    orders = [Order(f"peak-{tag}-{n:04d}", (hot, others[n % len(others)]), 0.0) for n in range(orders_n)]

    def post(order: Order) -> None:
        order.posted_at = time.time()
        try:
            items = tuple((sku, 1) for sku in order.skus)
            answer = merchant.start_payment(order_input(order.order_id, "pm_card_visa", items))
            order.answer, order.queued = 202, answer.get("status") == "queued"
        except MerchantApiError as error:
            order.answer = error.status
        except OSError:
            order.answer = None

    first = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for n, order in enumerate(orders):
            delay = first + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, order)
    progress(f"  offered in {time.monotonic() - first:.1f} s; waiting for every execution to end")

    client = boto3.client("stepfunctions")
    deadline = time.monotonic() + drain
    arn = {o.order_id: cloud.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + o.order_id
           for o in orders}  # fmt: skip
    pending = [o for o in orders if o.answer is not None and o.answer < 500]
    last_note = time.monotonic()
    while pending and time.monotonic() < deadline:
        still = []
        for order in pending:
            try:
                execution = client.describe_execution(executionArn=arn[order.order_id])
            except client.exceptions.ExecutionDoesNotExist:
                still.append(order)
                continue
            order.started_at = execution["startDate"].timestamp()
            if execution["status"] == "RUNNING":
                still.append(order)
            else:
                order.ended_at = execution["stopDate"].timestamp()
        pending = still
        if time.monotonic() - last_note > 15:
            progress(f"  {len(orders) - len(pending)}/{len(orders)} ended")
            last_note = time.monotonic()
        time.sleep(0.5)
    seconds = max((o.ended_at or 0) for o in orders) - min(o.posted_at for o in orders)

    captured = {c.get("payment_intent") for c in stripe.charges.values() if c.get("captured")}
    refunded = Counter(r.get("payment_intent") for r in stripe.refunds.values())
    orders_table = cloud.table("OrdersTable")
    for order in orders:
        if order.started_at is not None:
            history = cloud.history(arn[order.order_id])
            order.final_state = final_state(history) if order.ended_at is not None else "(running)"
            order.parked = any(e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"]
                               .startswith("Park") for e in history)  # fmt: skip
            order.errors = tuple(_errors(history))
        item = orders_table.get_item(Key={"orderId": order.order_id}, ConsistentRead=True).get("Item") or {}
        order.order_status = str(item.get("status", ""))
        intents = [pi["id"] for pi in payment_intents_of(stripe, order.order_id)]
        order.charges = sum(1 for pi in intents if pi in captured)
        order.refunds = sum(refunded[pi] for pi in intents)
    left = {sku: int(inventory.get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]["available"]) for sku in stock}
    manual = cloud.template.parameters.get("CaptureMethod", "manual") == "manual"
    verdict = judge(orders, stock, left, hot, manual)
    throttled = Counter(cloud.aws.throttled)
    throttled.subtract(throttled_before)
    made = [r for r in stripe.requests[requests_before:] if not r.publishable]
    start, end, _ = middle_window(o.ended_at for o in orders if o.ended_at is not None)
    in_middle = sum(1 for r in made if start <= r.at <= end)
    return PeakRun(
        scale=quotas.scale, predicted_per_s=predicted, binding=binding, verdict=verdict, window_s=window,
        seconds=seconds, stripe_429=sum(1 for r in made if r.status == 429), aws_throttled=+throttled,
        budget_per_payment=mix_usage(paths, weights).get("stripe.budget", 0.0),
        stripe_requests=Counter(f"{r.method} {_route(r.path)}" for r in made),
        stripe_per_s_middle=in_middle / (end - start) if end > start else 0.0,
    )  # fmt: skip


def _errors(history: list[dict[str, Any]]) -> Iterable[str]:
    for event in history:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
                yield f"{details.get('error')}: {str(details.get('cause', ''))[:200]}"


# -- the report ---------------------------------------------------------------------------------


def render(run: PeakRun) -> str:
    v = run.verdict
    within = "within" if run.within_tolerance else "**outside**"
    throttled = ", ".join(f"{s}:{a} {n}" for (s, a), n in sorted(run.aws_throttled.items())) or "none"
    states = ", ".join(f"{state} {n}" for state, n in sorted(v.final_states.items()))
    budget = Quotas.scaled(run.scale).stripe_budget_per_second
    lines = [
        BEGIN,
        "",
        "### Peak run (generated)",
        "",
        f"`{run.command}`: quotas at scale {run.scale:g} and the Stripe budget alike "
        f"(StripeRequestsPerSecond {budget:g}); {v.offered} orders offered in {run.window_s:g} s through "
        f"`POST /payments`; the whole run (first POST to last end) {run.seconds:.0f} s.",
        "",
        "| | |",
        "| --- | --- |",
        f"| offered | **{v.offered_per_s:.2f}**/s ({v.offered / run.predicted_per_s / run.window_s:.1f} x the model) |",
        f"| model's sustained rate for this mix | **{run.predicted_per_s:.2f}**/s, bound by "
        f"{capacity.describe(run.binding, Quotas.scaled(run.scale).model_limits())}/s |",
        f"| completed over the busy period (first POST to last completion) | **{v.completed_per_s:.2f}**/s: ratio "
        f"**{run.ratio:.2f}**, {within} 25 % of the model |",
        f"| completed over the middle 80 % of completions (not the measure: see the definitions) | "
        f"{v.middle_per_s:.2f}/s |",
        f"| final states | {states} ({v.completed} of {v.offered} correct) |",
        f"| failed by a throttle | **{v.failed_by_throttle}** |",
        f"| longest wait, POST to outcome | **{v.max_wait_s:.1f} s** |",
        f"| longest wait, POST to the execution's start | {v.max_start_wait_s:.1f} s ({v.queued} orders queued) |",
        f"| payments parked at least once, then completed | {v.parked} |",
        f"| the stack's Stripe requests a second, middle window (budget {budget:g}) | "
        f"{run.stripe_per_s_middle:.2f} |",
        f"| the stack's Stripe requests per ended payment (the model: {run.budget_per_payment:.2f}) | "
        f"{run.stripe_per_payment:.2f}: "
        + ", ".join(f"{route} {n}" for route, n in run.stripe_requests.most_common()) + " |",
        f"| the local Stripe's 429s; AWS requests throttled | {run.stripe_429}; {throttled} |",
        f"| wrong (oversold, refunded, charged twice, a wrong end) | {len(v.wrong)} |",
    ]
    lines += [f"- {why}" for why in v.wrong[:10]]
    return "\n".join([*lines, "", "```", run.line(), "```", "", END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=SCALE, help="the local quotas' scale (Quotas.scaled)")
    parser.add_argument("--overload", type=float, default=OVERLOAD, help="offered rate / the model's")
    parser.add_argument("--window", type=float, default=WINDOW_SECONDS, help="seconds the orders are offered over")
    parser.add_argument("--no-write", action="store_true", help="print the line; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    from bench import payments, report
    from bench.__main__ import progress
    from bench.local_stack import local_stack

    progress("payment paths on the local stack (no quotas): what one payment of the run's mix uses")
    with local_stack() as stack:
        payments.warm_up(stack)
        paths = {path: payments.measure_path(stack, path) for path in ("success", "out of stock")}
    command = "python -m bench.peak" + (" " + " ".join(argv) if argv else "")
    result = peak(paths, args.scale, args.overload, args.window, progress, command)
    if not args.no_write:
        report.write(ROOT / "BENCHMARKS.md", render(result), BEGIN, END)
    print(result.line(), flush=True)
    return 0 if result.verdict.ok else 1


def peak(
    paths: Mapping[str, PathCounts], scale: float, overload: float, window: float, progress: Callable[[str], None],
    command: str = "make bench",
) -> PeakRun:  # fmt: skip
    """A stack with the quotas at `scale` and the budget alike, real Retry waits (no retry scaling), parks shortened
    (5 s, 48 rounds: no order gives up within the run), a payment's wait for its webhook as long as the bench's."""
    from bench import payments
    from bench.local_stack import local_stack

    quotas = Quotas.scaled(scale)
    parameters = {"PaymentTimeoutSeconds": "600", "ParkIntervalSeconds": "5", "MaxParkRounds": "48"}
    with local_stack(quotas, **parameters, **quotas.parameters()) as stack:
        payments.warm_up(stack)
        time.sleep(2)  # the buckets the warm-up drew on fill up again
        result = run(stack, paths, quotas, progress, overload, window)
    result.command = command
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
