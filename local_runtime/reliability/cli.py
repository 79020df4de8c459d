"""`make reliability`: evidence that the payment invariants hold under races, faults, load and bad input.

Four parts, all through the local runtime (template.yaml on moto, the real ASL and handlers, the
local Stripe over HTTP, Stripe's events by webhook or through EventBridge), each run under both
CaptureMethods, manual (authorise, reserve the stock, capture) and automatic (charge, refund what
cannot be fulfilled), on stacks of their own:

- schedules: seeded random schedules, run many at a time, and some written out for every seed. Each is
  one order with a payment method (and a customer who passes or fails 3-D Secure, late or at the worst
  moment), a webhook delivery plan (before, racing or after the task token is stored; delayed, reordered,
  duplicated, dropped, replayed after the end), faults (Stripe 429/500/connection resets, before and after
  Stripe commits; DynamoDB throttling, SendTaskSuccess and Lambda failures and timeouts, before and after the
  request takes effect), outages longer than a step's Retry or than the parking, a second start of the order
  (at once, after the end, a day later), a day passing at Stripe (its idempotency keys forgotten) while a
  step waits to run again or before a redrive. After each: the reconciler on the execution's end (and the
  scheduled sweep, beside and after); the execution ends in the state Stripe's final word calls for, the
  order record tells the same story, at most one charge, no paid order left behind, no good order refunded,
  no second start that changed anything; the end the CaptureMethod calls for (manual: an authorised card
  captured only once its stock is reserved, an order out of stock released, never charged; automatic:
  nothing held, an order out of stock refunded); no authorisation or reservation left behind.
- load: many payments started at once on a stack of their own, all checked the same way.
- bad webhook requests over real HTTP, each with its expected status and a check that nothing changed.
- bad start inputs, each ending in the OrderRejected Fail state with a cause naming the field.

The last lines are one per CaptureMethod, `reliability: capture=manual schedules=N executions=N concurrent=N
bad_inputs=N lost=N double_charged=N unexpected_status=N orphaned=N wrongly_refunded=N duplicate_orders=N
captured_unreserved=N out_of_stock_charged=N held_authorisations=N stranded_reservations=N`; the exit status
is non-zero when any count after bad_inputs is.

Schedules come from a seeded `random.Random` rather than hypothesis: a schedule is a handful of
independent choices, thread timing makes runs non-replayable anyway (shrinking would chase noise),
and the seed in the report is all it takes to run the same choices again (`SEED=... make reliability`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from local_runtime.reliability.bad_starts import BAD_STARTS, run_bad_starts
from local_runtime.reliability.bad_webhooks import WEBHOOK_CASES
from local_runtime.reliability.load import LoadReport, run_load
from local_runtime.reliability.processes import ChildProcess
from local_runtime.reliability.report import Results, report
from local_runtime.reliability.schedule_run import run_on_a_stack, run_schedules
from local_runtime.reliability.schedules import all_schedules, order_prefix
from local_runtime.reliability.settings import (
    CAPTURE_METHODS,
    DEFAULT_CONCURRENT,
    DEFAULT_SCHEDULES,
    DEFAULT_SEED,
    PATIENT_PARAMETERS,
    SCHEDULE_PARAMETERS,
)
from local_runtime.reliability.stack import local_stack
from local_runtime.reliability.webhook_targets import finish_targets, prepare_targets, run_webhook_case


def run_schedule_phase(results: Results, seed: int, count: int, concurrency: int, say: Callable[[str], None]) -> None:
    """The seed's schedules on a stack of `results.capture_method`'s, those that move Stripe's clock on another."""
    method = results.capture_method
    schedules = all_schedules(seed, count)
    alone = [s for s in schedules if s.moves_stripes_clock]  # one at a time, on a Stripe (and a stack) of their own
    together = [s for s in schedules if not s.moves_stripes_clock]
    clock_moving = ChildProcess("reliability-stripes-clock", run_on_a_stack, alone, method) if alone else None
    say(
        f"schedules, CaptureMethod {method}: {len(together)} on one stack, {len(alone)} moving Stripe's clock one at "
        "a time in a process"
    )
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            say(f"  schedules: {done}/{total} after {time.monotonic() - started:.0f}s")

    try:
        parts = [run_on_a_stack(together, method, concurrency, progress)]
        if clock_moving is not None:
            parts.append(clock_moving.result())
    finally:
        if clock_moving is not None:
            clock_moving.stop()
    results.schedule_seconds = time.monotonic() - started
    for part in parts:
        results.schedules += part.verdicts
        results.schedule_stock += part.stock_problems
        results.dead_letters += part.dead_letters
        results.executions += part.executions
        results.sweeps += part.sweeps
        results.sweep_seconds += part.sweep_seconds
        results.sweep_failures += part.sweep_failures
    results.schedules.sort(key=lambda verdict: verdict.order_id)


def run_bad_input_phase(results: Results, seed: int) -> None:
    with local_stack(PATIENT_PARAMETERS[results.capture_method]) as stack:
        prefix = order_prefix("bad", seed)
        targets = prepare_targets(stack, prefix)
        results.webhook_cases = [run_webhook_case(stack, targets.target, case) for case in WEBHOOK_CASES]
        results.webhook_targets = finish_targets(stack, targets)
        results.bad_starts = run_bad_starts(stack, f"{prefix}-start")
        results.executions += stack.executions_started


def run_loads(count: int, seed: int, methods: tuple[str, ...]) -> list[LoadReport]:
    """The load under each CaptureMethod, one after the other (a process runs on one core)."""
    return [run_load(count, seed, method) for method in methods]


def reproduce(seed: int, count: int, indexes: list[int], capture_method: str) -> int:
    """Run some schedules of a seed again, one at a time, and show each one's path and deliveries."""
    chosen = [s for s in all_schedules(seed, count) if s.index in indexes]
    failed = 0
    print(f"CaptureMethod {capture_method}:")
    with local_stack(SCHEDULE_PARAMETERS[capture_method]) as stack:
        for schedule in chosen:
            (verdict,) = run_schedules(stack, [schedule], concurrency=1)
            failed += not verdict.ok
            print(f"#{schedule.index} {schedule.order_id}: {schedule.describe()}")
            print(f"  ended {verdict.final_state}, order {verdict.order_status}, Stripe {verdict.stripe_truth}")
            print("  path: " + " > ".join(verdict.path))
            for record in stack.courier.records_of(schedule.order_id):
                answer = (record.error or "put") if record.by_bus else (record.status or record.error)
                way = "bus" if record.by_bus else "webhook"
                print(f"  {way} {record.type} {record.event_id} #{record.attempt}: {answer}")
            for message in stack.courier.bus_messages_of(schedule.order_id):
                print(f"  queue {message.type} {message.event_id}: read {', '.join(message.reads) or 'never'}")
            for problem in verdict.problems():
                print(f"  PROBLEM {problem}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_runtime.reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--schedules", type=int, default=DEFAULT_SCHEDULES)
    parser.add_argument("--concurrent", type=int, default=DEFAULT_CONCURRENT, help="payments started at once")
    parser.add_argument("--schedule-concurrency", type=int, default=32, help="schedules run at a time")
    parser.add_argument("--serial", action="store_true", help="run the load test after the rest, not beside it")
    parser.add_argument(
        "--only", metavar="I,J", help="run only these schedules of the seed (no load, no bad inputs): a reproduction"
    )
    parser.add_argument(
        "--capture-method", choices=CAPTURE_METHODS, action="append",
        help="run under this CaptureMethod only (repeatable; default: each of them, manual first)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    methods = tuple(m for m in CAPTURE_METHODS if m in (args.capture_method or CAPTURE_METHODS))
    if args.only:
        indexes = [int(i) for i in args.only.split(",")]
        return max(reproduce(args.seed, args.schedules, indexes, method) for method in methods)

    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", flush=True)

    say(
        f"seed {args.seed}, CaptureMethod {' and '.join(methods)}: each runs {args.schedules} schedules "
        f"({args.schedule_concurrency} at a time), {args.concurrent} concurrent payments, {len(WEBHOOK_CASES)} bad "
        f"webhook requests, {len(BAD_STARTS)} bad start inputs"
    )
    runs = {method: Results(capture_method=method) for method in methods}
    loads = None
    if args.concurrent and not args.serial:
        # The load has a process (and a core) of its own: one Python process runs on one core.
        loads = ChildProcess("reliability-load", run_loads, args.concurrent, args.seed, methods)
        say(f"load: {args.concurrent} payments at once under each CaptureMethod, in a second process")
    try:
        for method, results in runs.items():
            if args.schedules:
                run_schedule_phase(results, args.seed, args.schedules, args.schedule_concurrency, say)
                failing = sum(1 for v in results.schedules if not v.ok)
                say(f"schedules done in {results.schedule_seconds:.1f}s: {failing} broke an invariant")
            run_bad_input_phase(results, args.seed)
            failing = sum(1 for c in results.webhook_cases if not c.ok) + sum(1 for b in results.bad_starts if not b.ok)
            say(f"bad inputs done (CaptureMethod {method}): {failing} not as expected")
        if args.concurrent:
            reports = loads.result() if loads is not None else run_loads(args.concurrent, args.seed, methods)
            for load in reports:
                results = runs[load.capture_method]
                results.load = load
                results.executions += load.executions
                say(f"load done (CaptureMethod {load.capture_method}): {load.count} payments final after "
                    f"{load.wall_seconds:.1f}s")  # fmt: skip
    finally:
        if loads is not None:
            loads.stop()
    for results in runs.values():
        print(report(results), flush=True)
    say("done")
    for results in runs.values():
        print(results.summary_line(), flush=True)
    return 1 if any(results.failed for results in runs.values()) else 0
