"""Running schedules on a shared stack: each with its faults, its delivery plan, and a customer racing the workflow."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_runtime.engine import Fault
from local_runtime.reliability.courier import Plan
from local_runtime.reliability.faults import AwsFault, StripeFault, lambda_step_of
from local_runtime.reliability.invariants import Verdict, judge
from local_runtime.reliability.schedules import PAYMENTS, Schedule, order_input
from local_runtime.reliability.stack import Stack


class ScheduleRun:
    """One schedule on a shared stack: faults aimed at its order, its delivery plan, its customer."""

    def __init__(self, stack: Stack, schedule: Schedule, deadline: float) -> None:
        self.stack, self.schedule, self.deadline = stack, schedule, deadline
        self.order_id = schedule.order_id
        self.payment = PAYMENTS[schedule.payment]
        self.rng = random.Random(schedule.seed)
        self._stripe_faults: list[Any] = []
        self._aws_faults: list[Fault] = []
        self._fired = 0  # how many of this schedule's requests a fault failed
        self._done = threading.Event()

    def run(self) -> Verdict:
        stack, schedule = self.stack, self.schedule
        plan = Plan(
            mode=schedule.delivery,
            duplicates=schedule.duplicates,
            drop_rate=schedule.drop_rate,
            max_delay=schedule.max_delay,
            rng=random.Random(schedule.seed + 1),
        )
        stack.courier.plan(self.order_id, plan)
        stack.hooks[self.order_id] = self._before_invoke
        if self.payment.customer == "pay_before_cancel":
            stack.stripe_hooks[self.order_id] = self._before_cancel
        self._inject_faults()
        started = time.monotonic()
        customer = threading.Thread(target=self._customer, daemon=True, name=f"customer-{schedule.index}")
        arn = ""
        try:
            arn = stack.start(order_input(self.order_id, self.payment), self.order_id)
            customer.start()
            finished = stack.watcher.wait(arn, self.deadline)
            seconds = time.monotonic() - started
            self._done.set()
            customer.join(timeout=15)
            self._withdraw_faults()
            stack.courier.flush_held(self.order_id)
            stack.courier.drain(self.order_id, timeout=30)
            if finished and schedule.replay_after_end:
                stack.courier.replay(self.order_id)
                stack.courier.drain(self.order_id, timeout=30)
            verdict = judge(stack, schedule.describe(), self.order_id, arn, seconds, finished=finished)
        except Exception as failure:  # noqa: BLE001 - a harness failure is reported, not raised
            verdict = Verdict(schedule.describe(), self.order_id, "(harness)", "?", "?", "?")
            verdict.lost.append(f"harness error: {failure!r}: {traceback.format_exc(limit=3)}")
        finally:
            self._done.set()
            self._withdraw_faults()
            stack.hooks.pop(self.order_id, None)
            stack.stripe_hooks.pop(self.order_id, None)
        verdict.faults_fired = self._fired
        return verdict

    # -- faults aimed at this order --------------------------------------------------------------

    def _mine(self, text: str) -> bool:
        if self.order_id in text:
            return True
        return any(pi_id in text for pi_id in self.stack.courier.payment_intents_of(self.order_id))

    def _inject_faults(self) -> None:
        prefixes = {
            "create": ("POST", "/v1/payment_intents"),
            "retrieve": ("GET", "/v1/payment_intents/"),
            "cancel": ("POST", "/v1/payment_intents/"),
            "refund": ("POST", "/v1/refunds"),
        }
        for spec in self.schedule.stripe_faults:
            method, prefix = prefixes[spec.request]

            def match(path: str, raw: str, spec: StripeFault = spec) -> bool:
                if spec.request == "create" and path != "/v1/payment_intents":
                    return False
                if spec.request == "cancel" and not path.endswith("/cancel"):
                    return False
                if self._mine(path + "?" + raw):
                    self._fired += 1
                    return True
                return False

            self._stripe_faults.append(
                self.stack.stripe.fail_next(
                    method,
                    prefix,
                    status=spec.status or 500,
                    times=spec.times,
                    after_commit=spec.after_commit,
                    reset_connection=spec.reset_connection,
                    should_retry=spec.should_retry,
                    match=match,
                )
            )
        for spec in self.schedule.aws_faults:

            def aws_match(body: str, spec: AwsFault = spec) -> bool:
                if spec.step is not None and lambda_step_of(body) != spec.step:
                    return False
                if self._mine(body):
                    self._fired += 1
                    return True
                return False

            fault = Fault(spec.service, spec.action, spec.code, spec.status, spec.times, aws_match, spec.after_commit)
            self._aws_faults.append(fault)
            self.stack.cloud.aws.inject(fault)

    def _withdraw_faults(self) -> None:
        for stripe_fault in self._stripe_faults:
            stripe_fault.times = 0
        for aws_fault in self._aws_faults:
            self.stack.cloud.aws.remove(aws_fault)

    # -- the customer, the bank and the races they run ---------------------------------------------

    def _before_invoke(self, logical_id: str, event: dict[str, Any]) -> None:
        if logical_id == "RegisterTaskTokenFunction":
            self.stack.courier.token_about_to_be_stored(self.order_id, str(event.get("paymentIntentId")))
        elif (
            logical_id == "SettlePaymentIntentFunction"
            and event.get("reason") == "timeout"
            and self.payment.customer == "pay_at_reconcile"
        ):
            self._pay(str(event.get("paymentIntentId")))

    def _before_cancel(self, method: str, path: str) -> None:
        self._pay(path.split("/")[3])  # the customer passes 3-D Secure the instant before our cancel lands

    def _pay(self, pi_id: str) -> None:
        with contextlib.suppress(ValueError):  # not awaiting 3-D Secure any more: too late
            self.stack.stripe.complete_3ds(pi_id, succeed=True)

    def _customer(self) -> None:
        action = self.payment.customer
        if action not in ("3ds_pass", "3ds_fail", "bank_settles"):
            return
        wanted = "processing" if action == "bank_settles" else "requires_action"
        while not self._done.is_set():
            pis = [pi for pi in self.stack.payment_intents(self.order_id) if pi["status"] == wanted]
            if pis:
                break
            time.sleep(0.05)
        else:
            return
        time.sleep(self.schedule.customer_delay)
        with contextlib.suppress(ValueError):  # cancelled meanwhile: the customer (or bank) is too late
            if action == "bank_settles":
                self.stack.stripe.settle(pis[0]["id"], succeed=self.rng.random() < 0.6)
            else:
                self.stack.stripe.complete_3ds(pis[0]["id"], succeed=action == "3ds_pass")


def run_schedules(
    stack: Stack,
    schedules: list[Schedule],
    *,
    concurrency: int = 32,
    deadline: float = 150.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def one(schedule: Schedule) -> None:
        verdict = ScheduleRun(stack, schedule, deadline).run()
        with lock:
            verdicts.append(verdict)
            if progress is not None:
                progress(len(verdicts), len(schedules))

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="schedule") as pool:
        list(pool.map(one, schedules))
    return sorted(verdicts, key=lambda v: v.order_id)
