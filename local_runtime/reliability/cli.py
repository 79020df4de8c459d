"""`make reliability`: evidence that the payment invariants hold under races, faults, load and bad input.

Four parts, all through the local runtime (template.yaml on moto, the real ASL and handlers, the
local Stripe over HTTP, webhooks over HTTP to the local HTTP API):

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
  no second start that changed anything.
- load: many payments started at once on a stack of their own, all checked the same way.
- bad webhook requests over real HTTP, each with its expected status and a check that nothing changed.
- bad start inputs, each ending in the OrderRejected Fail state with a cause naming the field.

The last line is `reliability: schedules=N executions=N concurrent=N bad_inputs=N lost=N double_charged=N
unexpected_status=N orphaned=N wrongly_refunded=N duplicate_orders=N`; the exit status is non-zero when any
count after bad_inputs is.

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
from local_runtime.reliability.load import run_load
from local_runtime.reliability.processes import ChildProcess
from local_runtime.reliability.report import Results, report
from local_runtime.reliability.schedule_run import run_on_a_stack, run_schedules
from local_runtime.reliability.schedules import all_schedules, order_prefix
from local_runtime.reliability.settings import (
    DEFAULT_CONCURRENT,
    DEFAULT_SCHEDULES,
    DEFAULT_SEED,
    PATIENT_PARAMETERS,
    SCHEDULE_PARAMETERS,
)
from local_runtime.reliability.stack import local_stack
from local_runtime.reliability.webhook_targets import finish_targets, prepare_targets, run_webhook_case


def run_schedule_phase(results: Results, seed: int, count: int, concurrency: int, say: Callable[[str], None]) -> None:
    schedules = all_schedules(seed, count)
    alone = [s for s in schedules if s.moves_stripes_clock]  # one at a time, on a Stripe (and a stack) of their own
    together = [s for s in schedules if not s.moves_stripes_clock]
    clock_moving = ChildProcess("reliability-stripes-clock", run_on_a_stack, alone) if alone else None
    say(f"schedules: {len(together)} on one stack, {len(alone)} moving Stripe's clock one at a time in a process")
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            say(f"  schedules: {done}/{total} after {time.monotonic() - started:.0f}s")

    try:
        parts = [run_on_a_stack(together, concurrency, progress)]
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
    with local_stack(PATIENT_PARAMETERS) as stack:
        prefix = order_prefix("bad", seed)
        targets = prepare_targets(stack, prefix)
        results.webhook_cases = [run_webhook_case(stack, targets.target, case) for case in WEBHOOK_CASES]
        results.webhook_targets = finish_targets(stack, targets)
        results.bad_starts = run_bad_starts(stack, f"{prefix}-start")
        results.executions += stack.executions_started


def reproduce(seed: int, count: int, indexes: list[int]) -> int:
    """Run some schedules of a seed again, one at a time, and show each one's path and deliveries."""
    chosen = [s for s in all_schedules(seed, count) if s.index in indexes]
    failed = 0
    with local_stack(SCHEDULE_PARAMETERS) as stack:
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
    args = parser.parse_args(argv)
    if args.only:
        return reproduce(args.seed, args.schedules, [int(i) for i in args.only.split(",")])

    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {text}", flush=True)

    say(
        f"seed {args.seed}: {args.schedules} schedules ({args.schedule_concurrency} at a time), "
        f"{args.concurrent} concurrent payments, {len(WEBHOOK_CASES)} bad webhook requests, "
        f"{len(BAD_STARTS)} bad start inputs"
    )
    results = Results()
    load = None
    if args.concurrent and not args.serial:
        # The load test has a process (and a core) of its own: one Python process runs on one core.
        load = ChildProcess("reliability-load", run_load, args.concurrent, args.seed)
        say(f"load: {args.concurrent} payments starting in a second process")
    try:
        if args.schedules:
            run_schedule_phase(results, args.seed, args.schedules, args.schedule_concurrency, say)
            failing = sum(1 for v in results.schedules if not v.ok)
            say(f"schedules done in {results.schedule_seconds:.1f}s: {failing} broke an invariant")
        run_bad_input_phase(results, args.seed)
        failing = sum(1 for c in results.webhook_cases if not c.ok) + sum(1 for b in results.bad_starts if not b.ok)
        say(f"bad inputs done: {failing} not as expected")
        if args.concurrent:
            results.load = load.result() if load is not None else run_load(args.concurrent, args.seed)
            results.executions += results.load.executions
            say(f"load done: {results.load.count} payments final after {results.load.wall_seconds:.1f}s")
    finally:
        if load is not None:
            load.stop()
    print(report(results), flush=True)
    say("done")
    print(results.summary_line(), flush=True)
    return 1 if results.failed else 0
