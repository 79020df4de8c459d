"""The failures a schedule aims at its own order's requests: Stripe's API; DynamoDB, Step Functions, Lambda, SES.

A fault fails `times` requests; an outage (`lasts`) fails every matching request for so many seconds from the
first one it fails, longer than a step's Retry (the step parks), or until the execution ends (UNTIL_THE_END:
longer than the parking, so the execution ends NeedsAttention).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNTIL_THE_END = math.inf
# A step's Retry gives up after about 3 s here (its waits scaled to a tenth) and a park round takes about 4 s:
# an outage of these lengths parks a step once or twice, well inside MaxParkRounds (3).
PARKING_OUTAGE_SECONDS = (4.5, 6.0, 7.5)
# A throttled DynamoDB request first waits out botocore's own backoff (a second or two a retry), so a round of the
# Retry takes about 12 s: these park a step once, at most twice.
THROTTLED_OUTAGE_SECONDS = (15.0, 20.0)
# The write that binds an attempt to its PaymentIntent, made right after Stripe created it.
BINDING_WRITE = ":paymentIntentId"
# The write that records a Stripe event on its payment record (`PaymentRecords.record_event`), whichever way it came.
EVENT_WRITE = "lastEventRank"


@dataclass(frozen=True)
class StripeFault:
    """A failure of Stripe's API for this order's requests (see `FakeStripe.fail_next`)."""

    request: str  # create | retrieve | cancel | capture | refund | any
    status: int = 500
    times: int = 1
    after_commit: bool = False
    reset_connection: bool = False
    should_retry: bool | None = None
    lasts: float | None = None  # seconds from the first failure (an outage), instead of `times`

    def describe(self) -> str:
        what = "reset" if self.reset_connection else f"{self.status}"
        if self.status == 429 and self.should_retry:
            what += " lock_timeout"
        return f"stripe {self.request} {what} {_how_long(self.times, self.lasts)}" + (
            " after commit" if self.after_commit else ""
        )


@dataclass(frozen=True)
class AwsFault:
    """A failure of an AWS API for this order's requests (see `engine.Fault`).

    `Sandbox.Timedout` is not an API error but the function's own: it ran (its work done) and Lambda reports
    it timed out (`Stack.fail_function`)."""

    service: str
    action: str
    code: str
    status: int = 400
    times: int = 1
    after_commit: bool = False
    step: str | None = None  # Lambda faults: only the invocations of this state (see `lambda_step_of`)
    lasts: float | None = None  # seconds from the first failure (an outage), instead of `times`
    starts_at: str | None = None  # an outage begins with the first request whose body holds this text
    only: str | None = None  # a counted fault fails only the requests whose body holds this text

    def describe(self) -> str:
        where = f" at {self.step}" if self.step else ""
        begins = " from the binding write" if self.starts_at == BINDING_WRITE else ""
        begins += " of the event's record" if self.only == EVENT_WRITE else ""
        return f"{self.service} {self.action} {self.code}{where} {_how_long(self.times, self.lasts)}{begins}" + (
            " after commit" if self.after_commit else ""
        )

    @property
    def function_timeout(self) -> bool:
        return self.code == "Sandbox.Timedout"


Fault = StripeFault | AwsFault


def _how_long(times: int, lasts: float | None) -> str:
    if lasts is None:
        return f"x{times}"
    return "until the end" if lasts == UNTIL_THE_END else f"for {lasts:g}s"


def outlasts_parking(faults: tuple[Fault, ...]) -> bool:
    return any(f.lasts == UNTIL_THE_END for f in faults)


ASL = Path(__file__).resolve().parents[2] / "statemachine" / "payment_workflow.asl.json"


@dataclass(frozen=True)
class LambdaStep:
    """A Task state that invokes a function, as the ASL writes it: the keys of the payload it gives the function,
    the values fixed in it, and the function's logical id (`${<id>Arn}`)."""

    keys: frozenset[str]
    values: dict[str, Any]
    function: str

    def takes(self, payload: dict[str, Any]) -> bool:
        return set(payload) == self.keys and all(payload.get(k) == v for k, v in self.values.items())


def lambda_steps(asl: dict[str, Any]) -> dict[str, LambdaStep]:
    """Every Task state of the ASL that invokes a function (read from the ASL, so that a new or changed step cannot
    leave the faults aimed at it firing at nothing)."""
    steps = {}
    for name, state in asl["States"].items():
        parameters = state.get("Parameters") or {}
        if state["Type"] != "Task" or not isinstance(parameters.get("Payload"), dict):
            continue
        payload = parameters["Payload"]
        steps[name] = LambdaStep(
            frozenset(key.removesuffix(".$") for key in payload),
            {key: value for key, value in payload.items() if not key.endswith(".$")},
            str(parameters["FunctionName"]).removeprefix("${").removesuffix("Arn}"),
        )
    return steps


# Which Task state invoked a function, told by the payload the ASL gives it (its keys, and for the states sharing a
# function, the values that tell them apart) and, where two functions take the same payload (ReserveStock and
# FulfilOrder), by the function.
LAMBDA_STEPS = lambda_steps(json.loads(ASL.read_text()))
# The steps whose Catch parks them (the Notify steps move on without the e-mail; AcceptOrder's failures, having
# charged nothing, end NeedsAttention at once).
PARKING_STEPS = (
    "CreatePaymentIntent", "WaitForPaymentOutcome", "SettleFailedAttempt", "ReconcileAfterTimeout", "FulfilOrder",
    "RefundPayment", "ReserveStock", "CapturePayment", "ReleaseAuthorization",
)  # fmt: skip


def lambda_steps_of(payload: Any, function: str | None = None) -> set[str]:
    """The Task states whose invocation this can be: `payload` is the event, or the Invoke request's body;
    `function` the function's name or ARN, if known (without it, ReserveStock and FulfilOrder look alike)."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, TypeError):
            return set()
    if not isinstance(payload, dict):
        return set()
    return {
        name
        for name, step in LAMBDA_STEPS.items()
        if step.takes(payload) and (function is None or step.function in function)
    }


def lambda_step_of(payload: Any, function: str) -> str | None:
    """The Task state whose invocation this is (see `lambda_steps_of`)."""
    found = lambda_steps_of(payload, function)
    return found.pop() if len(found) == 1 else None


def parking_outage(r: random.Random) -> float:
    return r.choice(PARKING_OUTAGE_SECONDS)


def any_outage(r: random.Random, parking: tuple[float, ...] = PARKING_OUTAGE_SECONDS) -> float:
    return UNTIL_THE_END if r.random() < 0.3 else r.choice(parking)


STRIPE_FAULTS: tuple[Callable[[random.Random], StripeFault], ...] = (
    lambda r: StripeFault("create", 500, r.randint(1, 4)),
    lambda r: StripeFault("create", 500, 1, after_commit=True),
    lambda r: StripeFault("create", 0, r.randint(1, 3), reset_connection=True),
    lambda r: StripeFault("create", 0, 1, after_commit=True, reset_connection=True),
    lambda r: StripeFault("create", 429, r.randint(1, 3)),
    lambda r: StripeFault("create", 429, r.randint(1, 3), should_retry=True),
    lambda r: StripeFault("retrieve", 500, r.randint(1, 4)),
    lambda r: StripeFault("retrieve", 0, r.randint(1, 3), reset_connection=True),
    lambda r: StripeFault("retrieve", 429, r.randint(1, 2)),
    lambda r: StripeFault("cancel", 0, 1, after_commit=True, reset_connection=True),
    lambda r: StripeFault("cancel", 500, r.randint(1, 3)),
    lambda r: StripeFault("cancel", 500, 1, after_commit=True),
    lambda r: StripeFault("refund", 0, 1, after_commit=True, reset_connection=True),
    lambda r: StripeFault("refund", 500, r.randint(1, 4)),
    lambda r: StripeFault("refund", 429, r.randint(1, 2)),
    lambda r: StripeFault("capture", 500, r.randint(1, 4)),
    lambda r: StripeFault("capture", 500, 1, after_commit=True),
    lambda r: StripeFault("capture", 0, 1, after_commit=True, reset_connection=True),
)
AWS_FAULTS: tuple[Callable[[random.Random], AwsFault], ...] = (
    lambda r: AwsFault("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", 400, r.randint(1, 4)),
    lambda r: AwsFault("dynamodb", "UpdateItem", "ThrottlingException", 400, r.randint(1, 4)),
    lambda r: AwsFault("dynamodb", "UpdateItem", "ProvisionedThroughputExceededException", 400, 1, True),
    lambda r: AwsFault("dynamodb", "PutItem", "ProvisionedThroughputExceededException", 400, r.randint(1, 3)),
    lambda r: AwsFault(
        "dynamodb", "TransactWriteItems", "ProvisionedThroughputExceededException", 400, r.randint(1, 4)
    ),
    lambda r: AwsFault("dynamodb", "TransactWriteItems", "InternalServerError", 500, 1, True),
    lambda r: AwsFault("dynamodb", "GetItem", "ThrottlingException", 400, r.randint(1, 3)),
    lambda r: AwsFault("stepfunctions", "SendTaskSuccess", "ThrottlingException", 400, r.randint(1, 4)),
    lambda r: AwsFault("stepfunctions", "SendTaskSuccess", "ServiceUnavailable", 503, r.randint(1, 3)),
    lambda r: AwsFault("stepfunctions", "SendTaskSuccess", "ServiceUnavailable", 503, 1, True),
    lambda r: AwsFault("lambda", "Invoke", "TooManyRequestsException", 429, r.randint(1, 3)),
    lambda r: AwsFault("lambda", "Invoke", "ServiceException", 500, r.randint(1, 2)),
    lambda r: AwsFault("lambda", "Invoke", "ServiceException", 500, 1, True),
    lambda r: AwsFault(
        "lambda", "Invoke", "ServiceException", 500, r.randint(1, 2), r.random() < 0.5, r.choice(list(LAMBDA_STEPS))
    ),
    # The function did its work, then the invocation failed in a way no Retry covers (it timed out, say).
    lambda r: AwsFault(
        "lambda",
        "Invoke",
        r.choice(("Unknown", "Sandbox.Timedout")),
        500,
        r.randint(1, 2),
        True,
        r.choice(list(LAMBDA_STEPS)),
    ),
    # ... and kept failing past the Retry (5 attempts): the step parks, and must not redo what it did.
    lambda r: AwsFault("lambda", "Invoke", "Unknown", 500, 6, True, r.choice(PARKING_STEPS)),
    lambda r: AwsFault("sesv2", "SendEmail", "TooManyRequestsException", 429, r.randint(1, 3)),
)
# Outages: longer than a step's Retry (it parks), some longer than the parking (NeedsAttention). An outage
# without end is aimed where the workflow cannot go on without the service: every Stripe request of the
# order, every write of the order, a step that parks.
OUTAGES: tuple[Callable[[random.Random], Fault], ...] = (
    lambda r: StripeFault("create", 500, should_retry=False, lasts=parking_outage(r)),
    lambda r: StripeFault("create", 401, lasts=parking_outage(r)),  # the API key rolled before the secret
    lambda r: StripeFault("create", 429, lasts=parking_outage(r)),
    lambda r: StripeFault("retrieve", 500, should_retry=False, lasts=parking_outage(r)),
    lambda r: StripeFault("retrieve", 401, lasts=parking_outage(r)),
    lambda r: StripeFault("cancel", 429, lasts=parking_outage(r)),
    lambda r: StripeFault("refund", 500, should_retry=False, after_commit=True, lasts=parking_outage(r)),
    lambda r: StripeFault("capture", 500, should_retry=False, after_commit=True, lasts=parking_outage(r)),
    lambda r: StripeFault("any", r.choice((500, 429, 401)), should_retry=False, lasts=any_outage(r)),
    lambda r: AwsFault(
        "dynamodb",
        "UpdateItem",
        "ProvisionedThroughputExceededException",
        400,
        lasts=any_outage(r, THROTTLED_OUTAGE_SECONDS),
    ),
    lambda r: AwsFault(
        "dynamodb",
        "UpdateItem",
        "ThrottlingException",
        lasts=r.choice(THROTTLED_OUTAGE_SECONDS),
        starts_at=BINDING_WRITE,
    ),
    lambda r: AwsFault(
        "dynamodb", "TransactWriteItems", "ThrottlingException", lasts=any_outage(r, THROTTLED_OUTAGE_SECONDS)
    ),
    lambda r: AwsFault("stepfunctions", "SendTaskSuccess", "ServiceUnavailable", 503, lasts=parking_outage(r)),
    lambda r: AwsFault("lambda", "Invoke", "ServiceException", 500, step=r.choice(PARKING_STEPS), lasts=any_outage(r)),
    lambda r: AwsFault("lambda", "Invoke", "Unknown", 500, after_commit=True, step="AcceptOrder", lasts=UNTIL_THE_END),
)
