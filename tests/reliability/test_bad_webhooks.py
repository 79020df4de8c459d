"""Bad requests at the webhook, over real HTTP to the local HTTP API: each gets its status and changes nothing.

Every case runs against a stack with an order waiting on its task token (a forged success must not
resume it) and a paid, fulfilled one (a replay must not touch it). After all of them, the waiting
customer pays and that order must still end paid and fulfilled.
"""

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_runtime.engine import http_api_event
from local_runtime.reliability import (
    PATIENT_PARAMETERS,
    WEBHOOK_CASES,
    WebhookCase,
    WebhookTargets,
    finish_targets,
    local_stack,
    prepare_targets,
    run_webhook_case,
    snapshot,
)
from local_runtime.reliability import Stack as ReliabilityStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[ReliabilityStack]:
    with local_stack(PATIENT_PARAMETERS["manual"]) as local:
        yield local


@pytest.fixture(scope="module")
def targets(stack: ReliabilityStack) -> WebhookTargets:
    return prepare_targets(stack, "t-webhook")


def test_there_are_at_least_forty_bad_requests() -> None:
    assert len([case for case in WEBHOOK_CASES if case.expected != 200]) >= 40


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=[case.name for case in WEBHOOK_CASES])
def test_bad_request_gets_its_status_and_changes_nothing(
    stack: ReliabilityStack, targets: WebhookTargets, case: WebhookCase
) -> None:
    result = run_webhook_case(stack, targets.target, case)

    assert (result.status, result.changed) == (case.expected, [])


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("base64 body as API Gateway marks binary content", "valid", 200),
        ("isBase64Encoded with a body that is not base64", "not base64!", 400),
    ],
)
def test_base64_encoded_events_from_the_http_api(
    stack: ReliabilityStack, targets: WebhookTargets, name: str, body: str, expected: int
) -> None:
    # The local HTTP API base64-encodes only non-UTF-8 bodies; API Gateway may do it for any body.
    from local_runtime.reliability import _foreign, _signature

    raw = json.dumps(_foreign(targets.target)).encode()
    event: dict[str, Any] = http_api_event(
        "POST", "/webhooks/stripe", {"Content-Type": "application/json", "Stripe-Signature": _signature(raw)}, b""
    )
    event.update(body=base64.b64encode(raw).decode() if body == "valid" else body, isBase64Encoded=True)
    before = snapshot(stack)

    response, error = stack.cloud.invoke_function("StripeWebhookFunction", event)

    assert error is None
    assert response["statusCode"] == expected, name
    assert snapshot(stack) == before


def test_the_waiting_order_still_ends_paid_after_every_bad_request(
    stack: ReliabilityStack, targets: WebhookTargets
) -> None:
    verdicts = finish_targets(stack, targets)

    assert [v.problems() for v in verdicts] == [[], []]
    assert [v.final_state for v in verdicts] == ["PaymentSucceeded", "PaymentSucceeded"]
