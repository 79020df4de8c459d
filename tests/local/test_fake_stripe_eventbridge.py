"""Amazon EventBridge as an event destination (see local_runtime/fake_stripe/eventbridge.py), the delivery switches
applying to it as to webhook endpoints, and stripe-python reading what an EventBridge target receives."""

import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
import stripe
from moto import mock_aws
from stripe.events import V1PaymentIntentSucceededEventNotification

from local_runtime.fake_stripe import DEFAULT_SOURCE, FakeStripe
from tests.local._support import WebhookReceiver, create, wait_until


class Bus:
    """What the local runtime's `publish` would put on EventBridge, kept in order; fails the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.entries: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self._lock = threading.Lock()

    def publish(self, entry: dict[str, Any]) -> None:
        with self._lock:
            if self.fail_first:
                self.fail_first -= 1
                raise RuntimeError("PutEvents: 1 entry failed (ThrottlingException)")
            self.entries.append(entry)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.entries]

    def types(self) -> list[str]:
        return [entry["DetailType"] for entry in self.entries]


def envelope(entry: dict[str, Any]) -> str:
    """The event as EventBridge hands it to a rule's target
    (https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html)."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "eu-west-1",
            "resources": entry["Resources"],
            "detail": json.loads(entry["Detail"]),
        }
    )


def test_a_snapshot_entry_carries_the_whole_event(fake: FakeStripe, client: stripe.StripeClient) -> None:
    bus = Bus()
    fake.add_eventbridge_destination(bus.publish)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()

    assert bus.events() == fake.events
    for entry, event in zip(bus.entries, fake.events, strict=True):
        assert set(entry) == {"Source", "DetailType", "Detail", "Resources"}
        assert entry["Source"] == DEFAULT_SOURCE == "aws.partner/stripe.com/ed_test_local"
        assert entry["DetailType"] == event["type"] and entry["Resources"] == []


def test_a_thin_entry_carries_the_thin_event(fake: FakeStripe, client: stripe.StripeClient) -> None:
    bus = Bus()
    source = "aws.partner/stripe.com/ed_test_61SomeDestination"
    fake.add_eventbridge_destination(bus.publish, payload="thin", source=source)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()

    assert bus.events() == fake.thin_events
    assert bus.types() == ["v1.payment_intent.created", "v1.charge.succeeded", "v1.payment_intent.succeeded"]
    assert {entry["Source"] for entry in bus.entries} == {source}


def test_stripe_python_reads_the_envelope_a_target_receives(fake: FakeStripe, client: stripe.StripeClient) -> None:
    snapshots, thins = Bus(), Bus()
    fake.add_eventbridge_destination(snapshots.publish)
    fake.add_eventbridge_destination(thins.publish, payload="thin")
    pi = create(client, "pm_card_visa")
    fake.wait_for_deliveries()

    event = client.construct_event_without_verification(envelope(snapshots.entries[-1]))
    assert isinstance(event, stripe.Event) and event.type == "payment_intent.succeeded"
    assert event.data.object.id == pi.id
    notification = client.parse_event_notification_without_verification(envelope(thins.entries[-1]))
    assert isinstance(notification, V1PaymentIntentSucceededEventNotification)
    assert notification.fetch_related_object().status == "succeeded"
    assert notification.fetch_event().snapshot_event == event.id
    with pytest.raises(ValueError, match="construct_event"):  # a snapshot is not a thin event notification
        client.parse_event_notification_without_verification(envelope(snapshots.entries[-1]))


def test_through_eventbridge_on_moto_to_a_queue(fake: FakeStripe, client: stripe.StripeClient) -> None:
    """What the local runtime does: PutEvents on a bus whose rule matches Stripe's source and feeds SQS."""
    with mock_aws():
        events, sqs = boto3.client("events", region_name="eu-west-1"), boto3.client("sqs", region_name="eu-west-1")
        events.create_event_bus(Name="stripe")
        queue = sqs.create_queue(QueueName="stripe-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": [{"prefix": "aws.partner/stripe.com/"}], "detail-type": ["v1.payment_intent.succeeded"]}
        events.put_rule(Name="stripe-outcomes", EventBusName="stripe", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="stripe-outcomes", EventBusName="stripe", Targets=[{"Id": "queue", "Arn": arn}])

        def publish(entry: dict[str, Any]) -> None:
            answer = events.put_events(Entries=[{**entry, "EventBusName": "stripe"}])
            if answer["FailedEntryCount"]:
                raise RuntimeError(answer["Entries"])

        fake.add_eventbridge_destination(publish, payload="thin")
        pi = create(client, "pm_card_visa")
        fake.wait_for_deliveries()
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]

    received = json.loads(message["Body"])
    assert received["detail-type"] == "v1.payment_intent.succeeded" and received["source"] == DEFAULT_SOURCE
    notification = client.parse_event_notification_without_verification(message["Body"])
    assert notification.fetch_related_object().id == pi.id


def test_a_failed_publish_is_retried_with_the_webhook_backoff(fake: FakeStripe, client: stripe.StripeClient) -> None:
    bus = Bus(fail_first=2)
    fake.add_eventbridge_destination(bus.publish, payload="thin")
    fake.add_eventbridge_destination(Bus(fail_first=1000).publish, source="aws.partner/stripe.com/ed_test_down")
    create(client)  # one event: payment_intent.created
    fake.wait_for_deliveries()

    thin = [d for d in fake.deliveries if d.destination == "amazon_eventbridge" and d.payload == "thin"]
    assert [(d.attempt, d.delivered) for d in thin] == [(1, False), (2, False), (3, True)]
    assert thin[0].url == DEFAULT_SOURCE and "ThrottlingException" in (thin[0].error or "")
    assert bus.types() == ["v1.payment_intent.created"]
    down = [d for d in fake.deliveries if d.url == "aws.partner/stripe.com/ed_test_down"]
    assert [d.attempt for d in down] == [1, 2, 3, 4] and not any(d.delivered for d in down)  # then given up


def test_a_destination_needs_a_partner_event_source(fake: FakeStripe) -> None:
    with pytest.raises(ValueError, match="partner event source"):
        fake.add_eventbridge_destination(Bus().publish, source="stripe.payments")


# ------------------------------------------------------------------ the switches, for every destination


@pytest.fixture
def bus(fake: FakeStripe) -> Bus:
    """Thin events on EventBridge, beside the snapshot webhook endpoint the `fake` fixture adds."""
    bus = Bus()
    fake.add_eventbridge_destination(bus.publish, payload="thin")
    return bus


def test_deliveries_tell_destinations_and_payloads_apart(
    fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver
) -> None:
    create(client)
    fake.wait_for_deliveries()
    assert sorted((d.destination, d.payload, d.type, d.delivered) for d in fake.deliveries) == [
        ("amazon_eventbridge", "thin", "v1.payment_intent.created", True),
        ("webhook_endpoint", "snapshot", "payment_intent.created", True),
    ]


def test_duplicates(fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver) -> None:
    fake.set_delivery(duplicate=1)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert bus.types().count("v1.payment_intent.succeeded") == receiver.types().count("payment_intent.succeeded") == 2


def test_drop_asks_about_each_payload(
    fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver
) -> None:
    asked: list[str] = []

    def drop(event: dict[str, Any]) -> bool:
        asked.append(event["object"])
        return event["type"] == "v1.payment_intent.succeeded"

    fake.set_delivery(drop=drop)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert set(asked) == {"event", "v2.core.event"}
    assert "v1.payment_intent.succeeded" not in bus.types() and "payment_intent.succeeded" in receiver.types()
    [dropped] = [d for d in fake.deliveries if d.error == "dropped"]
    assert (dropped.destination, dropped.payload, dropped.attempt) == ("amazon_eventbridge", "thin", 0)


def test_hold_and_release(fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver) -> None:
    fake.set_delivery(hold=True)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert bus.entries == [] and receiver.received == []
    fake.set_delivery()
    fake.release_held()
    fake.wait_for_deliveries()
    assert len(bus.entries) == len(receiver.received) == 3


def test_hold_some(fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver) -> None:
    fake.set_delivery(hold=lambda event: event["type"].endswith("payment_intent.succeeded"))
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert bus.types() == ["v1.payment_intent.created", "v1.charge.succeeded"]
    assert receiver.types() == ["payment_intent.created", "charge.succeeded"]
    fake.release_held()
    fake.wait_for_deliveries()
    assert bus.types()[-1] == "v1.payment_intent.succeeded" and receiver.types()[-1] == "payment_intent.succeeded"


def test_reorder(fake: FakeStripe, client: stripe.StripeClient, bus: Bus, receiver: WebhookReceiver) -> None:
    fake.set_delivery(reorder=True)
    create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert bus.types() == ["v1.payment_intent.succeeded", "v1.charge.succeeded", "v1.payment_intent.created"]
    assert receiver.types() == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]


def test_delay(fake: FakeStripe, client: stripe.StripeClient, bus: Bus) -> None:
    fake.set_delivery(delay_seconds=0.3)
    started = time.monotonic()
    create(client)
    time.sleep(0.1)
    assert bus.entries == []
    wait_until(lambda: bus.entries != [])
    assert time.monotonic() - started >= 0.3
