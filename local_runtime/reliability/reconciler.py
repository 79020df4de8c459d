"""The reconciler as AWS runs it: on an execution's end (EventBridge) and every so often (EventBridge Scheduler)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from local_runtime.scenarios import execution_ended_event
from local_runtime.template import Template

RECONCILER = "ReconcilePaymentsFunction"
Invoke = Callable[[str, Any], tuple[Any, dict[str, Any] | None]]


def statuses_reconciled(template: Template) -> list[str]:
    """The execution statuses the reconciler's EventBridge rule in template.yaml matches."""
    rule = template.resources[RECONCILER]["Properties"]["Events"]["ExecutionEnded"]["Properties"]
    return list(rule["Pattern"]["detail"]["status"])


def reconcile_end(invoke: Invoke, template: Template, execution: dict[str, Any]) -> str:
    """Hand the reconciler the event EventBridge sends as the execution ends, if its rule matches; what it did."""
    if execution["status"] not in statuses_reconciled(template):
        return ""
    result, error = invoke(RECONCILER, execution_ended_event(execution))
    if error is not None:
        raise RuntimeError(f"the reconciler failed: {error['errorType']}: {error['errorMessage']}")
    return ", ".join(f"{k}={v}" for k, v in result.items() if v)


class Sweeper:
    """The scheduled sweep (`{"sweep": {}}`, every 15 minutes in AWS, over two days of payments).

    While `running`, it sweeps in the background beside the schedules, pausing `PAUSE_FACTOR` times as long as the
    last sweep took (a sweep grows with the payments it covers), so that, as in AWS, sweeping takes a small part of
    the time."""

    PAUSE_FACTOR, MIN_PAUSE = 10, 2.0

    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._stop = threading.Event()
        self.runs = 0
        self.seconds = 0.0  # spent sweeping
        self.failures: list[str] = []

    def sweep(self) -> bool:
        started = time.monotonic()
        _, error = self._invoke(RECONCILER, {"sweep": {}})
        self.runs += 1
        self.seconds += time.monotonic() - started
        if error is not None:
            self.failures.append(f"{error['errorType']}: {error['errorMessage']}")
        return error is None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._stop.clear()
        thread = threading.Thread(target=self._sweep_now_and_then, name="reliability-sweeper", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=60)

    def _sweep_now_and_then(self) -> None:
        pause = self.MIN_PAUSE
        while not self._stop.wait(pause):
            started = time.monotonic()
            self.sweep()
            pause = max(self.MIN_PAUSE, self.PAUSE_FACTOR * (time.monotonic() - started))
