"""Recovery: the webhook's hand-off of a late payment to the reconciler, an asynchronous Lambda invoke."""

import json
from typing import Any

import pytest

from payments.errors import AwsUnavailable
from payments.recovery import Recovery
from tests.unit._support import client_error


class LambdaClient:
    def __init__(self, fail_with: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_with = fail_with

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.fail_with:
            raise client_error(self.fail_with, "Invoke", http_status=429)
        return {"StatusCode": 202}


def test_the_reconciler_is_started_without_waiting_for_it() -> None:
    client = LambdaClient()
    made: list[LambdaClient] = []

    recovery = Recovery(lambda: made.append(client) or client, "stack-ReconcilePaymentsFunction")
    assert made == []  # no client on the webhook's cold start
    recovery("pi_late")

    (call,) = client.calls
    assert (call["FunctionName"], call["InvocationType"]) == ("stack-ReconcilePaymentsFunction", "Event")
    assert json.loads(call["Payload"]) == {"paymentIntentId": "pi_late"}


def test_a_throttled_hand_off_is_our_transient_failure() -> None:
    # The webhook answers 503, so Stripe delivers the event again (and the sweep follows anyway)
    recovery = Recovery(lambda: LambdaClient(fail_with="TooManyRequestsException"), "stack-Reconcile")

    with pytest.raises(AwsUnavailable, match="starting the reconciler"):
        recovery("pi_late")
