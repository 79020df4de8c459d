"""A redrive-like rerun: steps of an ended execution run again, with the input they were given.

moto has no RedriveExecution. A redrive restarts a failed execution from the step it failed in; here the steps a
redrive could restart from run again: the last attempt's CreatePaymentIntent, and the last step that wrote to
Stripe or to the order (settle, reconcile, reserve, capture, release, fulfil or refund).
"""

from __future__ import annotations

import json
from typing import Any

from local_runtime.reliability.faults import lambda_step_of
from local_runtime.reliability.stack import Stack

LAST_WRITERS = (
    "SettleFailedAttempt", "ReconcileAfterTimeout", "ReserveStock", "CapturePayment", "ReleaseAuthorization",
    "FulfilOrder", "RefundPayment",
)  # fmt: skip


def invocations(history: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(state, function name, payload) of every Lambda the execution invoked, in order."""
    found = []
    for event in history:
        if event["type"] != "TaskScheduled":
            continue
        parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
        if "FunctionName" not in parameters:
            continue  # a Task that calls a service directly
        function = str(parameters["FunctionName"]).split(":")[-1]
        step = lambda_step_of(parameters.get("Payload"), function)
        if step is not None:
            found.append((step, function, parameters["Payload"]))
    return found


def rerun_steps(stack: Stack, arn: str) -> list[str]:
    """Run the steps again as a redrive from each would (see the module's docstring); what each answered."""
    _, history = stack.execution(arn)
    ran = invocations(history)
    chosen = [next((i for i in reversed(ran) if i[0] == "CreatePaymentIntent"), None)]
    chosen.append(next((i for i in reversed(ran) if i[0] in LAST_WRITERS), None))
    notes = []
    for step, function, payload in filter(None, chosen):
        result, error = stack.cloud.invoke_function(function, payload)
        answer = f"{error['errorType']}: {error['errorMessage']}" if error else json.dumps(result)
        notes.append(f"[rerun {step} the next day: {answer[:160]}]")
    return notes
