"""The failures a schedule aims at its own order's requests: Stripe's API; DynamoDB, Step Functions, Lambda, SES."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StripeFault:
    """A failure of Stripe's API for this order's requests (see `FakeStripe.fail_next`)."""

    request: str  # create | retrieve | cancel | refund
    status: int = 500
    times: int = 1
    after_commit: bool = False
    reset_connection: bool = False
    should_retry: bool | None = None

    def describe(self) -> str:
        what = "reset" if self.reset_connection else f"{self.status}"
        if self.status == 429 and self.should_retry:
            what += " lock_timeout"
        return f"stripe {self.request} {what} x{self.times}" + (" after commit" if self.after_commit else "")


@dataclass(frozen=True)
class AwsFault:
    """A failure of an AWS API for this order's requests (see `engine.Fault`)."""

    service: str
    action: str
    code: str
    status: int = 400
    times: int = 1
    after_commit: bool = False
    step: str | None = None  # Lambda faults: only the invocations of this state (see LAMBDA_PAYLOAD_KEYS)

    def describe(self) -> str:
        where = f" at {self.step}" if self.step else ""
        return f"{self.service} {self.action} {self.code}{where} x{self.times}" + (
            " after commit" if self.after_commit else ""
        )


# Which state invoked a function, told by the keys of the payload the ASL gives it.
LAMBDA_PAYLOAD_KEYS = {
    "AcceptOrder": {"order", "executionId"},
    "CreatePaymentIntent": {"order", "attempt", "executionId"},
    "WaitForPaymentOutcome": {"taskToken", "paymentIntentId", "orderId", "attempt"},
    "SettleOrReconcile": {"paymentIntentId", "orderId", "reason"},
    "FulfilOrder": {"order", "paymentIntentId"},
    "RefundPayment": {"order", "paymentIntentId", "error"},
}


def lambda_step_of(body: str) -> str | None:
    try:
        keys = set(json.loads(body))
    except (ValueError, TypeError):
        return None
    return next((step for step, wanted in LAMBDA_PAYLOAD_KEYS.items() if keys == wanted), None)


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
        "lambda",
        "Invoke",
        "ServiceException",
        500,
        r.randint(1, 2),
        r.random() < 0.5,
        r.choice(list(LAMBDA_PAYLOAD_KEYS)),
    ),
    # The function did its work, then the invocation failed in a way no Retry covers (it timed out, say).
    lambda r: AwsFault(
        "lambda",
        "Invoke",
        "Unknown",
        500,
        r.randint(1, 2),
        True,
        r.choice(("CreatePaymentIntent", "SettleOrReconcile", "FulfilOrder", "RefundPayment")),
    ),
    # ... and kept failing past the Retry (5 attempts): the Catch must not refund what was fulfilled.
    lambda r: AwsFault("lambda", "Invoke", "Unknown", 500, 6, True, "FulfilOrder"),
    lambda r: AwsFault("sesv2", "SendEmail", "TooManyRequestsException", 429, r.randint(1, 3)),
)
