"""The load run: many payments started at once on a stack of their own, each held to the schedules' checks."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from local_runtime.reliability.courier import Plan
from local_runtime.reliability.invariants import Verdict, judge, judge_authorisations, stock_problems
from local_runtime.reliability.schedule_run import pays_again
from local_runtime.reliability.schedules import PAYMENTS, order_input, order_prefix, pick
from local_runtime.reliability.settings import LOAD_PARAMETERS
from local_runtime.reliability.stack import local_stack

LOAD_MIX = {"card": 75, "declined": 8, "insufficient_funds": 5, "sepa": 7, "out_of_stock": 5}


@dataclass
class LoadReport:
    count: int
    start_seconds: float  # to start them all
    wall_seconds: float  # from the first start until every execution had ended
    cpu_seconds: float
    latencies: list[float]
    final_states: Counter[str]
    failed: list[Verdict]
    executions: int
    stock_problems: list[str]
    capture_method: str


def run_load(
    count: int, seed: int, capture_method: str = "manual", *, starters: int = 8, deadline: float = 1200.0
) -> LoadReport:
    """`count` payments started at once on a stack of their own (timeout 600 s: none should time out; no Stripe
    request budget: `settings.LOAD_PARAMETERS`)."""
    with local_stack(LOAD_PARAMETERS[capture_method]) as stack:
        rng = random.Random(seed)
        prefix = order_prefix("load", seed)
        warm_up = f"{prefix}-warmup"
        stack.courier.plan(warm_up, Plan("immediate"))
        stack.watcher.wait(stack.start(order_input(warm_up, PAYMENTS["card"]), warm_up), 60)
        orders = [(f"{prefix}-{i:05d}x", pick(rng, LOAD_MIX)) for i in range(count)]
        for order_id, _ in orders:
            stack.courier.plan(order_id, Plan("immediate"))
        stock = stack.stock()
        started, cpu = time.monotonic(), time.process_time()
        with ThreadPoolExecutor(max_workers=starters) as pool:
            arns = list(pool.map(lambda o: stack.start(order_input(o[0], PAYMENTS[o[1]]), o[0]), orders))
        done = threading.Event()
        for (order_id, kind), arn in zip(orders, arns, strict=True):
            if again := PAYMENTS[kind].again:  # after a decline, the customer pays again (`schedules.Payment.again`)
                customer = threading.Thread(target=pays_again, args=(stack, order_id, arn, again, 0.0, done, 0.5))
                customer.daemon = True
                customer.start()
        start_seconds = time.monotonic() - started
        finished = stack.watcher.wait_all(arns, deadline - (time.monotonic() - started))
        done.set()
        wall = time.monotonic() - started
        cpu_seconds = time.process_time() - cpu
        verdicts, latencies = [], []
        for (order_id, kind), arn, done in zip(orders, arns, finished, strict=True):
            stack.courier.drain(order_id, timeout=30)
            verdict = judge(
                stack, f"load {kind}", order_id, arn, wall, finished=done,
                customer_races_cancel=PAYMENTS[kind].acts_on_the_page,
            )  # fmt: skip
            judge_authorisations(stack, verdict)
            verdicts.append(verdict)
            latencies.append(verdict.latency)
        return LoadReport(
            count=count,
            start_seconds=start_seconds,
            wall_seconds=wall,
            cpu_seconds=cpu_seconds,
            latencies=sorted(latencies),
            final_states=Counter(v.final_state for v in verdicts),
            failed=[v for v in verdicts if not v.ok],
            executions=stack.executions_started,
            stock_problems=stock_problems(stack, verdicts, stock),
            capture_method=capture_method,
        )
