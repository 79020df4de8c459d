"""The EventBridge ingress: an SQS batch of EventBridge envelopes, each Stripe event taken the webhook's one path;
a transient failure of ours is reported back for that message alone (ReportBatchItemFailures)."""

import json
from typing import Any

import pytest

from local_runtime.engine import LambdaContext
from payments.errors import AwsUnavailable, StripeUnavailable
from payments.webhooks import WebhookResult
from tests.conftest import load_function
from tests.unit._support import payment_intent_event


def envelope(detail: dict[str, Any], source: str = "aws.partner/stripe.com/ed_test_61QkZ") -> str:
    """An event as EventBridge delivers it to a target (docs.stripe.com/event-destinations/eventbridge)."""
    return json.dumps({
        "version": "0", "id": "5b4a1c4e-0000-0000-0000-000000000000", "detail-type": detail.get("type"),
        "source": source, "account": "123456789012", "time": "2026-11-30T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": detail,
    })  # fmt: skip


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [{"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": body} for n, body in enumerate(bodies)]
    }


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    module = load_function("stripe_events")
    received: list[dict[str, Any]] = []

    def receive(stripe_event: dict[str, Any]) -> WebhookResult:
        received.append(stripe_event)
        if stripe_event["id"] == "evt_dynamodb_down":
            raise AwsUnavailable("throttled")
        if stripe_event["id"] == "evt_stripe_down":
            raise StripeUnavailable("fetch failed")
        return WebhookResult.RESUMED

    monkeypatch.setattr(module.ingress, "receive", receive)
    return module, received


def test_each_stripe_event_goes_the_one_path_and_only_transient_failures_come_again(handler) -> None:
    module, received = handler
    ours = payment_intent_event("payment_intent.succeeded", "pi_ok", event_id="evt_ok")
    thin = {"id": "evt_thin", "object": "v2.core.event", "type": "v1.payment_intent.succeeded"}
    down = payment_intent_event("payment_intent.succeeded", "pi_1", event_id="evt_dynamodb_down")
    stripe_down = {"id": "evt_stripe_down", "object": "v2.core.event", "type": "v1.payment_intent.succeeded"}
    batch = sqs_event(
        envelope(ours), envelope(thin), "not json", envelope(ours, source="aws.partner/someone-else.com/x"),
        envelope(down), envelope(stripe_down),
    )  # fmt: skip

    context = LambdaContext("StripeEventsFunction", "arn:aws:lambda:us-east-1:123456789012:function:x", "req-1")
    answer = module.lambda_handler(batch, context)

    assert [event["id"] for event in received] == ["evt_ok", "evt_thin", "evt_dynamodb_down", "evt_stripe_down"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m4"}, {"itemIdentifier": "m5"}]}
