"""Running schedules on a shared stack: each with its faults, its delivery plan, and a customer racing the workflow;
then what AWS does after an execution ends (the reconciler), a second start of the order, a day passing at Stripe."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local_runtime.engine import Fault
from local_runtime.fake_stripe import Browser
from local_runtime.reliability.courier import Plan
from local_runtime.reliability.faults import (
    LAMBDA_STEPS,
    UNTIL_THE_END,
    AwsFault,
    StripeFault,
    lambda_steps_of,
    outlasts_parking,
)
from local_runtime.reliability.invariants import (
    NEEDS_ATTENTION,
    Verdict,
    delivery_counts,
    judge,
    judge_money,
    second_start_problems,
    stock_problems,
)
from local_runtime.reliability.reconciler import reconcile_end
from local_runtime.reliability.redrive import rerun_steps
from local_runtime.reliability.schedules import PAYMENTS, Schedule, order_input
from local_runtime.reliability.settings import SCHEDULE_PARAMETERS
from local_runtime.reliability.stack import Stack, local_stack
from local_runtime.scenarios import final_state

A_DAY_AND_AN_HOUR = 25 * 3600  # past Stripe's 24 hours: every idempotency key is forgotten
STRIPE_REQUESTS = {  # (method, path prefix) of each kind of request a Stripe fault fails
    "create": [("POST", "/v1/payment_intents")],
    "retrieve": [("GET", "/v1/payment_intents/")],
    "cancel": [("POST", "/v1/payment_intents/")],
    "capture": [("POST", "/v1/payment_intents/")],
    "refund": [("POST", "/v1/refunds")],
    "any": [("GET", "/v1/"), ("POST", "/v1/")],
}
FOREVER = 10**9  # the `times` of an outage: its window, not a count, ends it
# The error names of ours, not the order's.
TRANSIENT = ("StripeUnavailable", "StripeBusy", "AwsUnavailable", "Lambda.", "Sandbox.")


class Outage:
    """An outage's window: it opens with the first request it fails and stays open `lasts` seconds."""

    def __init__(self, lasts: float, starts_at: str | None = None) -> None:
        self.lasts, self.starts_at = lasts, starts_at
        self.began: float | None = None
        self._lock = threading.Lock()

    def covers(self, body: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if self.began is None:
                if self.starts_at is not None and self.starts_at not in body:
                    return False
                self.began = now
            return now - self.began < self.lasts


class ScheduleRun:
    """One schedule on a shared stack: faults aimed at its order, its delivery plan, its customer."""

    def __init__(self, stack: Stack, schedule: Schedule, deadline: float) -> None:
        self.stack, self.schedule, self.deadline = stack, schedule, deadline
        self.order_id = schedule.order_id
        self.payment = PAYMENTS[schedule.payment]
        self.rng = random.Random(schedule.seed)
        self._stripe_faults: list[Any] = []
        self._aws_faults: list[Fault] = []
        self._function_faults: list[Fault] = []
        self._outages: list[Outage] = []
        self._fired = 0  # how many of this schedule's requests a fault failed
        self._done = threading.Event()
        self._days_passed = 0
        self.notes: list[str] = []  # what happened after the end, for the verdict's path
        self._reconciler_failures: list[str] = []
        self._arns: list[str] = []
        self._customer_thread = threading.Thread(target=self._customer, daemon=True, name=f"customer-{schedule.index}")

    def run(self) -> Verdict:
        stack, schedule = self.stack, self.schedule
        plan = Plan(
            mode=schedule.delivery,
            duplicates=schedule.duplicates,
            drop_rate=schedule.drop_rate,
            max_delay=schedule.max_delay,
            rng=random.Random(schedule.seed + 1),
            destination=schedule.destination,
        )
        stack.courier.plan(self.order_id, plan)
        stack.hooks[self.order_id] = self._before_invoke
        stack.after_hooks[self.order_id] = self._after_invoke
        if self.payment.customer == "pay_before_cancel":
            stack.stripe_hooks[self.order_id] = self._before_cancel
        self._inject_faults()
        started = time.monotonic()
        try:
            arns = self._start()
            finished = all(stack.watcher.wait(each, self.deadline) for each in arns)
            seconds = time.monotonic() - started
            self._wind_down(finished)
            # The order's execution is the one that claimed it; any other is a second start.
            arn, *others = sorted(arns, key=lambda each: each != stack.order(self.order_id).get("executionId"))
            if finished:
                self._after_the_end(arn)
            outlasted = any(outage.lasts == UNTIL_THE_END and outage.began is not None for outage in self._outages)
            verdict = judge(
                stack, schedule.describe(), self.order_id, arn, seconds, finished=finished,
                outage_outlasted_parking=outlasted, customer_races_cancel=self.payment.acts_on_the_page,
            )  # fmt: skip
            for other in others:
                self._judge_second_start(verdict, other, None, outlasted)
            if finished and schedule.second_start in ("after_end", "after_keys_forgotten"):
                self._start_again(verdict)
            verdict.unexpected_status += self._reconciler_failures
        except Exception as failure:  # noqa: BLE001 - a harness failure is reported, not raised
            verdict = Verdict(schedule.describe(), self.order_id, "(harness)", "?", "?", "?")
            verdict.lost.append(f"harness error: {failure!r}: {traceback.format_exc(limit=3)}")
        finally:
            self._done.set()
            self._withdraw_faults()
            self._stop_staging()
            self._restore_stripes_clock()
        verdict.faults_fired = self._fired
        verdict.path += self.notes
        verdict.destination = schedule.destination
        verdict.deliveries = delivery_counts(stack, self.order_id)
        return verdict

    def _start(self) -> list[str]:
        """Start the order (twice at once, if the schedule says so), its customer, and the watch for a failed step."""
        order = order_input(self.order_id, self.payment)
        arns = self._arns = [self.stack.start(order, self.order_id)]
        if self.schedule.second_start == "concurrent":
            arns.append(self.stack.start(order, f"{self.order_id}-again"))
        self._customer_thread.start()
        if self.schedule.key_pruning == "while_retrying":
            threading.Thread(target=self._a_day_passes_when_a_step_failed, args=(arns[0],), daemon=True).start()
        return arns

    def _wind_down(self, finished: bool) -> None:
        """The execution ended (or its time is up): the customer stops, the faults go, every webhook is answered."""
        self._done.set()
        self._customer_thread.join(timeout=15)
        self._withdraw_faults()
        self._stop_staging()
        self.stack.courier.flush_held(self.order_id)
        self._deliveries_answered()
        if finished and self.schedule.replay_after_end:
            self.stack.courier.replay(self.order_id)
            self._deliveries_answered()

    def _deliveries_answered(self) -> None:
        """Until every delivery of the order has been answered and every message it put on the bus handled
        (FakeStripe's own deliveries too, for plan "stripe")."""
        if self.schedule.delivery == "stripe":
            with contextlib.suppress(TimeoutError):
                self.stack.stripe.wait_for_deliveries(timeout=10)
        self.stack.courier.drain(self.order_id, timeout=30)

    # -- after the end: the reconciler, a redrive, a second start -----------------------------------

    def _after_the_end(self, arn: str) -> None:
        """The reconciler as EventBridge starts it on the execution's end; for a redrive the next day, the steps
        again and the reconciler on the redriven execution's end. (The scheduled sweep runs beside, and after.) Then
        Stripe's deliveries of what they did."""
        self._reconcile(arn)
        if self.schedule.key_pruning == "before_rerun":
            self._a_day_passes()
            self.notes += rerun_steps(self.stack, arn)
            self._reconcile(arn)
        self._deliveries_answered()

    def _reconcile(self, arn: str) -> None:
        execution = self.stack.sfn.describe_execution(executionArn=arn)
        try:
            reconciled = reconcile_end(self.stack.cloud.invoke_function, self.stack.cloud.template, execution)
        except RuntimeError as failure:
            self._reconciler_failures.append(f"on the end of {execution['name']}: {failure}")
            return
        if reconciled:
            self.notes.append(f"[reconciler on the end of {execution['name']}: {reconciled}]")

    def _start_again(self, verdict: Verdict) -> None:
        """The same order started again under another name, after the first ended (a day later, for Stripe)."""
        if self.schedule.second_start == "after_keys_forgotten":
            self._a_day_passes()
        before = self.stack.order(self.order_id)
        arn = self.stack.start(order_input(self.order_id, self.payment), f"{self.order_id}-again")
        if not self.stack.watcher.wait(arn, 60):
            verdict.duplicate_orders.append("the second start was still running after 60s")
            return
        self._judge_second_start(verdict, arn, before, False)

    def _judge_second_start(
        self, verdict: Verdict, arn: str, order_before: dict[str, Any] | None, outage_outlasted_parking: bool
    ) -> None:
        """What the second execution did, then the reconciler on its end. It must end DuplicateOrder (or, when an
        outage outlasted the parking before it could tell, NeedsAttention)."""
        verdict.duplicate_orders += second_start_problems(self.stack, self.order_id, arn, order_before)
        end = final_state(self.stack.execution(arn)[1])
        if end != "DuplicateOrder" and not (end == NEEDS_ATTENTION and outage_outlasted_parking):
            verdict.unexpected_status.append(f"the second start ended {end}, not DuplicateOrder")
        self._reconcile(arn)

    def _a_day_passes(self) -> None:
        self.stack.stripe.clock.advance(A_DAY_AND_AN_HOUR)
        self._days_passed += 1
        self.notes.append("[a day passed at Stripe: every idempotency key forgotten]")

    def _a_day_passes_when_a_step_failed(self, arn: str) -> None:
        """Once a step has failed for a transient reason, it waits to run again (its Retry, or parked) and its
        requests are over: a day passes at Stripe, so the step's next run meets forgotten keys."""
        while not self._done.wait(0.05):
            _, history = self.stack.execution(arn)
            errors = [e["taskFailedEventDetails"].get("error", "") for e in history if e["type"] == "TaskFailed"]
            if any(error.startswith(TRANSIENT) for error in errors):
                self._a_day_passes()
                return

    def _restore_stripes_clock(self) -> None:
        self.stack.stripe.clock.advance(-A_DAY_AND_AN_HOUR * self._days_passed)
        self._days_passed = 0

    # -- faults aimed at this order --------------------------------------------------------------

    def _mine(self, text: str) -> bool:
        if self.order_id in text:
            return True
        return any(pi_id in text for pi_id in self.stack.courier.payment_intents_of(self.order_id))

    def _fails(self, text: str, outage: Outage | None) -> bool:
        """Whether a fault fails this request of the order (counted), within its outage's window if it has one."""
        if not self._mine(text) or (outage is not None and not outage.covers(text)):
            return False
        self._fired += 1
        return True

    def _outage(self, spec: StripeFault | AwsFault) -> Outage | None:
        if spec.lasts is None:
            return None
        outage = Outage(spec.lasts, getattr(spec, "starts_at", None))
        self._outages.append(outage)
        return outage

    def _inject_faults(self) -> None:
        for spec in self.schedule.stripe_faults:
            outage = self._outage(spec)
            for method, prefix in STRIPE_REQUESTS[spec.request]:

                def match(path: str, raw: str, spec: StripeFault = spec, outage: Outage | None = outage) -> bool:
                    if spec.request == "create" and path != "/v1/payment_intents":
                        return False
                    if spec.request in ("cancel", "capture") and not path.endswith(f"/{spec.request}"):
                        return False
                    return self._fails(path + "?" + raw, outage)

                self._stripe_faults.append(
                    self.stack.stripe.fail_next(
                        method,
                        prefix,
                        status=spec.status or 500,
                        times=FOREVER if outage else spec.times,
                        after_commit=spec.after_commit,
                        reset_connection=spec.reset_connection,
                        should_retry=spec.should_retry,
                        match=match,
                    )
                )
        for spec in self.schedule.aws_faults:
            outage = self._outage(spec)

            def aws_match(body: str, spec: AwsFault = spec, outage: Outage | None = outage) -> bool:
                if spec.step is not None and spec.step not in lambda_steps_of(body):
                    return False  # (and the fault is aimed at the step's function: `engine.Fault.function`)
                if spec.only is not None and spec.only not in body:
                    return False
                return self._fails(body, outage)

            times = FOREVER if outage else spec.times
            function = LAMBDA_STEPS[spec.step].function if spec.step is not None else None
            fault = Fault(
                spec.service, spec.action, spec.code, spec.status, times, aws_match, spec.after_commit, function
            )
            if spec.function_timeout:
                self._function_faults.append(fault)
                self.stack.fail_function(fault)
            else:
                self._aws_faults.append(fault)
                self.stack.cloud.aws.inject(fault)

    def _withdraw_faults(self) -> None:
        for stripe_fault in self._stripe_faults:
            stripe_fault.times = 0
        for aws_fault in self._aws_faults:
            self.stack.cloud.aws.remove(aws_fault)
        for function_fault in self._function_faults:
            self.stack.withdraw_function_fault(function_fault)

    # -- the customer, the bank and the races they run ---------------------------------------------

    def _stop_staging(self) -> None:
        self.stack.hooks.pop(self.order_id, None)
        self.stack.after_hooks.pop(self.order_id, None)
        self.stack.stripe_hooks.pop(self.order_id, None)

    def _before_invoke(self, logical_id: str, event: dict[str, Any]) -> None:
        if logical_id == "RegisterTaskTokenFunction":
            self.stack.courier.token_about_to_be_stored(self.order_id, str(event.get("paymentIntentId")))
        elif (
            logical_id == "SettlePaymentIntentFunction"
            and event.get("reason") == "timeout"
            and self.payment.customer == "pay_at_reconcile"
        ):
            self._pay(str(event.get("paymentIntentId")))

    def _after_invoke(self, function: str, event: dict[str, Any], result: Any) -> None:
        if "CreatePaymentIntentFunction" in function and isinstance(result, dict) and result.get("paymentIntentId"):
            self.stack.courier.payment_intent_created(self.order_id, str(result["paymentIntentId"]))

    def _before_cancel(self, method: str, path: str) -> None:
        self._pay(path.split("/")[3])  # the customer passes 3-D Secure the instant before our cancel lands

    def _pay(self, pi_id: str) -> None:
        with contextlib.suppress(ValueError):  # not awaiting 3-D Secure any more: too late
            self.stack.stripe.complete_3ds(pi_id, succeed=True)

    def _customer(self) -> None:
        action = self.payment.customer
        if self.payment.again:
            arn = self._arns[0]
            pays_again(self.stack, self.order_id, arn, self.payment.again, self.schedule.customer_delay, self._done)
        if action not in ("3ds_pass", "3ds_fail", "bank_settles"):
            return
        wanted = "processing" if action == "bank_settles" else "requires_action"
        pi = waiting_for(self.stack, self.order_id, lambda pi: pi["status"] == wanted, self._done)
        if pi is None:
            return
        time.sleep(self.schedule.customer_delay)
        # Cancelled meanwhile: the customer (or bank) is too late; or a fault aimed at the order reset the page's
        # connection: the customer gives up.
        with contextlib.suppress(ValueError, OSError):
            if action == "bank_settles":
                self.stack.stripe.settle(pi["id"], succeed=self.rng.random() < 0.6)
            else:
                self.stack.stripe.complete_3ds(pi["id"], succeed=action == "3ds_pass")


AGAIN_CARDS = {"card": "4242424242424242", "declined": "4000000000000002"}  # the cards typed in the second time
NEXT_ATTEMPT = "NextAttempt"  # the state after which the workflow waits for the customer to pay again


def waiting_for(
    stack: Stack, order_id: str, wanted: Callable[[dict[str, Any]], bool], done: threading.Event, poll: float = 0.05
) -> dict[str, Any] | None:
    """The order's first PaymentIntent `wanted` accepts, once there is one (None if `done` comes first)."""
    while not done.is_set():
        found = next((pi for pi in stack.payment_intents(order_id) if wanted(pi)), None)
        if found is not None:
            return found
        time.sleep(poll)
    return None


def pays_again(
    stack: Stack, order_id: str, arn: str, card: str, delay: float, done: threading.Event, poll: float = 0.05
) -> None:
    """The customer, once the payment was declined and the checkout page offers to pay again (the workflow moved on
    to the next attempt: it waits for the customer, not for a race with the webhook), pays the same PaymentIntent
    again `delay` seconds later (its client_secret, the publishable key, Stripe.js's calls), with a card that pays
    or one that is declined too. Too late (the timeout cancelled it) or a connection reset: the customer gives up."""
    while not done.is_set():
        _, history = stack.execution(arn)
        if any(e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == NEXT_ATTEMPT
               for e in history):  # fmt: skip
            break
        time.sleep(poll)
    else:
        return
    time.sleep(delay)
    declined = next((pi for pi in stack.payment_intents(order_id) if pi["status"] == "requires_payment_method"), None)
    if declined is not None:
        with contextlib.suppress(ValueError, OSError):
            Browser(stack.stripe.url, stack.stripe.publishable_key).pay(declined["client_secret"], AGAIN_CARDS[card])


def run_schedules(
    stack: Stack,
    schedules: list[Schedule],
    *,
    concurrency: int = 32,
    deadline: float = 300.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    """Run the schedules `concurrency` at a time, then, one at a time, those that move Stripe's clock; the scheduled
    sweep beside them and once after them all; then what the reconciler must have settled (`judge_money`).

    `deadline`: how long an execution may take to end. Stripe's rate_limit 429 until the end is the longest: each
    call waits out the budget's pause (up to 3 s), StripeBusy's patient Retry (12 more tries) runs before each of
    the three park rounds, and the execution ends NeedsAttention about 85 s after its start alone, over 150 s with
    32 schedules at once on two cores."""
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def one(schedule: Schedule) -> None:
        verdict = ScheduleRun(stack, schedule, deadline).run()
        with lock:
            verdicts.append(verdict)
            if progress is not None:
                progress(len(verdicts), len(schedules))

    together = [s for s in schedules if not s.moves_stripes_clock]
    with stack.sweeper.running():
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="schedule") as pool:
            # The longest first (an outage past the parking takes half a minute), so that none starts last.
            list(pool.map(one, sorted(together, key=lambda s: not outlasts_parking(s.faults))))
        for schedule in schedules:
            if schedule.moves_stripes_clock:
                one(schedule)
    swept = stack.sweeper.sweep()
    for verdict in verdicts:
        judge_money(stack, verdict, swept=swept)
    return sorted(verdicts, key=lambda v: v.order_id)


@dataclass
class SchedulesReport:
    verdicts: list[Verdict]
    seconds: float
    stock_problems: list[str]
    executions: int
    sweeps: int
    sweep_seconds: float
    sweep_failures: list[str]
    dead_letters: list[str]  # Stripe's events in the queue's dead-letter queue: events that could not be handled


def run_on_a_stack(
    schedules: list[Schedule], capture_method: str, concurrency: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> SchedulesReport:
    """`run_schedules` on a stack of its own, under this CaptureMethod, and the stock and the dead-letter queue
    checked after them all."""
    with local_stack(SCHEDULE_PARAMETERS[capture_method]) as stack:
        stock, started = stack.stock(), time.monotonic()
        verdicts = run_schedules(stack, schedules, concurrency=concurrency, progress=progress)
        return SchedulesReport(
            verdicts, time.monotonic() - started, stock_problems(stack, verdicts, stock), stack.executions_started,
            stack.sweeper.runs, stack.sweeper.seconds, stack.sweeper.failures, stack.dead_letters(),
        )  # fmt: skip
