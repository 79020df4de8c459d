"""Thin events for v1 objects, pinned to Stripe's docs (see local_runtime/fake_stripe/thin_events.py) and read by
stripe-python 16 as a thin webhook endpoint's receiver reads them: `parse_event_notification`, then
`fetch_related_object()` and `fetch_event()` against the fake."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from stripe.events import V1ChargeRefundedEventNotification, V1PaymentIntentSucceededEventNotification

from local_runtime.fake_stripe import FakeStripe
from tests.local._support import WebhookReceiver, create

THIN_SECRET = "whsec_thin"
PUSHED_FIELDS = {"id", "object", "type", "created", "livemode", "context", "reason", "related_object"}
RFC3339_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def thin(fake: FakeStripe) -> Iterator[WebhookReceiver]:
    """A second webhook endpoint, which takes thin events."""
    receiver = WebhookReceiver()
    fake.add_webhook_endpoint(receiver.url, secret=THIN_SECRET, payload="thin")
    yield receiver
    receiver.close()


def _received(receiver: WebhookReceiver, type_: str) -> tuple[dict[str, str], bytes]:
    [(headers, body)] = [(h, b) for h, b in receiver.received if json.loads(b)["type"] == type_]
    return headers, body


def _snapshot(fake: FakeStripe, type_: str, object_id: str) -> dict[str, Any]:
    [event] = [e for e in fake.events if e["type"] == type_ and e["data"]["object"]["id"] == object_id]
    return event


def test_a_thin_webhook_carries_only_the_notification(
    fake: FakeStripe, client: stripe.StripeClient, thin: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa", key="order-1:attempt-1")
    fake.wait_for_deliveries()

    headers, body = _received(thin, "v1.payment_intent.succeeded")
    event = json.loads(body)
    assert set(event) == PUSHED_FIELDS  # no data, no snapshot, no api_version
    assert event["id"].startswith("evt_") and event["object"] == "v2.core.event"
    assert RFC3339_MS_UTC.fullmatch(event["created"])
    assert event["livemode"] is False and event["context"] is None
    assert event["related_object"] == {"id": pi.id, "type": "payment_intent", "url": f"/v1/payment_intents/{pi.id}"}
    [create_request] = [r for r in fake.requests if r.method == "POST" and r.path == "/v1/payment_intents"]
    assert event["reason"] == {
        "type": "request",
        "request": {"id": create_request.request_id, "idempotency_key": "order-1:attempt-1"},
    }
    assert headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    assert headers["Stripe-Signature"].startswith("t=")


def test_stripe_python_parses_the_thin_webhook_and_fetches_from_the_fake(
    fake: FakeStripe, client: stripe.StripeClient, thin: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    headers, body = _received(thin, "v1.payment_intent.succeeded")

    notification = client.parse_event_notification(body, headers["Stripe-Signature"], THIN_SECRET)

    assert isinstance(notification, V1PaymentIntentSucceededEventNotification)
    assert notification.related_object.id == pi.id
    payment_intent = notification.fetch_related_object()
    assert isinstance(payment_intent, stripe.PaymentIntent) and payment_intent.status == "succeeded"
    event = notification.fetch_event()
    assert event.id == notification.id and event.type == "v1.payment_intent.succeeded"
    assert event.created == notification.created and event.changes is None
    assert event.snapshot_event == _snapshot(fake, "payment_intent.succeeded", pi.id)["id"]
    assert fake.requests[-1].path == f"/v2/core/events/{notification.id}" and fake.requests[-1].status == 200
    with pytest.raises(stripe.SignatureVerificationError):
        client.parse_event_notification(body, headers["Stripe-Signature"], fake.webhook_secret)


def test_a_thin_event_follows_every_snapshot_event_in_order(
    fake: FakeStripe, client: stripe.StripeClient, thin: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa")
    client.v1.refunds.create({"payment_intent": pi.id})
    fake.wait_for_deliveries()

    assert [e["type"] for e in fake.thin_events] == [f"v1.{e['type']}" for e in fake.events]
    assert [json.loads(body)["id"] for _, body in thin.received] == [e["id"] for e in fake.thin_events]
    for snapshot, thin_event in zip(fake.events, fake.thin_events, strict=True):
        assert thin_event["created"][:19] == datetime.fromtimestamp(snapshot["created"], UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
        assert thin_event["related_object"]["id"] == snapshot["data"]["object"]["id"]
    headers, body = _received(thin, "v1.charge.refunded")
    refunded = client.parse_event_notification(body, headers["Stripe-Signature"], THIN_SECRET)
    assert isinstance(refunded, V1ChargeRefundedEventNotification)
    charge = refunded.fetch_related_object()
    assert isinstance(charge, stripe.Charge) and charge.refunded and charge.payment_intent == pi.id


def test_no_reason_when_no_api_request_caused_the_event(
    fake: FakeStripe, client: stripe.StripeClient, thin: WebhookReceiver
) -> None:
    pi = create(client, "pm_usBankAccount_processing")
    fake.settle(pi.id)  # the bank, not an API request
    fake.wait_for_deliveries()

    _, body = _received(thin, "v1.payment_intent.succeeded")
    assert json.loads(body)["reason"] is None
    _, body = _received(thin, "v1.payment_intent.processing")
    assert json.loads(body)["reason"]["type"] == "request"


def test_v2_events_api_serves_thin_events_only_for_30_days(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa")
    thin_event, snapshot = fake.thin_events[-1], _snapshot(fake, "payment_intent.succeeded", pi.id)

    assert client.v2.core.events.retrieve(thin_event["id"]).snapshot_event == snapshot["id"]
    with pytest.raises(stripe.InvalidRequestError) as v1_id_on_v2:
        client.v2.core.events.retrieve(snapshot["id"])
    with pytest.raises(stripe.InvalidRequestError) as v2_id_on_v1:
        client.v1.events.retrieve(thin_event["id"])
    assert v1_id_on_v2.value.http_status == v2_id_on_v1.value.http_status == 404
    fake.clock.advance(31 * 24 * 3600)
    with pytest.raises(stripe.InvalidRequestError):
        client.v2.core.events.retrieve(thin_event["id"])


def test_the_publishable_key_cannot_read_v2_events(fake: FakeStripe, client: stripe.StripeClient) -> None:
    create(client, "pm_card_visa")
    browser = stripe.StripeClient(fake.publishable_key, base_addresses={"api": fake.url})
    with pytest.raises(stripe.PermissionError):
        browser.v2.core.events.retrieve(fake.thin_events[-1]["id"])


def test_pending_webhooks_counts_the_endpoints_that_take_snapshots(
    fake: FakeStripe, client: stripe.StripeClient, thin: WebhookReceiver
) -> None:
    create(client, "pm_card_visa")
    assert {event["pending_webhooks"] for event in fake.events} == {1}


def test_a_destination_takes_snapshot_or_thin_events_only(fake: FakeStripe) -> None:
    with pytest.raises(ValueError, match="payload"):
        fake.add_webhook_endpoint("http://127.0.0.1:9/webhook", payload="fat")
