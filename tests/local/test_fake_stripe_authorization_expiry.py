"""A held card authorization expires at the charge's `capture_before`, on the fake's movable clock
(authorizations.py).

Stripe's pages: https://docs.stripe.com/payments/place-a-hold-on-a-payment-method ("the
payment_method_details.card.capture_before attribute on the charge indicates when the authorization expires";
the validity windows: 7 days for a customer-initiated card-not-present payment, for a merchant-initiated Visa one
"exactly 4 days and 18 hours"; an expired authorization is `canceled`) and
https://docs.stripe.com/changelog/basil/2025-03-31/remove-refund-from-partial-capture-and-payment-cancellation-flow
(`cancellation_reason: "expired"`, events `charge.expired` and `payment_intent.canceled`, no Refund).
"""

from collections.abc import Iterator

import pytest
import stripe

from local_runtime.fake_stripe import Clock, FakeStripe
from tests.local._support import WebhookReceiver, client_of, create

T0 = 1_800_000_000  # 2027-01-15, a stopped clock: capture_before is exact
DAY = 24 * 3600


@pytest.fixture
def fake(receiver: WebhookReceiver) -> Iterator[FakeStripe]:
    with FakeStripe(clock=Clock(stopped_at=T0), webhook_retry_backoff=(0.05, 0.1, 0.2)) as f:
        f.add_webhook_endpoint(receiver.url)
        yield f


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return client_of(fake)


def capture_before(client: stripe.StripeClient, pi: stripe.PaymentIntent) -> int:
    pi = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    return pi.latest_charge.payment_method_details.card.capture_before  # type: ignore[union-attr]


def saved_card(client: stripe.StripeClient, test_id: str) -> tuple[str, str]:
    customer = client.v1.customers.create().id
    return customer, client.v1.payment_methods.attach(test_id, {"customer": customer}).id


def test_a_customer_initiated_hold_lasts_seven_days(client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa", capture_method="manual")
    assert capture_before(client, pi) == T0 + 7 * DAY


@pytest.mark.parametrize(
    ("test_id", "window"), [("pm_card_visa", 4 * DAY + 18 * 3600), ("pm_card_mastercard", 7 * DAY)]
)
def test_a_merchant_initiated_hold_lasts_as_long_as_its_brand_allows(
    client: stripe.StripeClient, test_id: str, window: int
) -> None:
    customer, card = saved_card(client, test_id)
    pi = create(client, card, customer=customer, off_session=True, capture_method="manual")
    assert pi.status == "requires_capture" and capture_before(client, pi) == T0 + window


def test_the_hold_expires_when_the_clock_reaches_capture_before(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    # Given a hold whose window is about to close
    pi = create(client, "pm_card_visa", capture_method="manual")
    expires_at = capture_before(client, pi)
    fake.clock.advance(expires_at - T0 - 1)
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_capture"

    # When the clock reaches capture_before (nobody asks: Stripe releases it on its own)
    fake.clock.advance(1)

    # Then the authorization is released and the PaymentIntent canceled, dated when it expired
    fake.wait_for_deliveries()
    events = [e for e in receiver.events() if e["type"] in ("charge.expired", "payment_intent.canceled")]
    assert [e["type"] for e in events] == ["charge.expired", "payment_intent.canceled"]
    assert {e["created"] for e in events} == {expires_at} and all(e["request"]["id"] is None for e in events)
    expired = client.v1.payment_intents.retrieve(pi.id)
    assert (expired.status, expired.cancellation_reason, expired.canceled_at) == ("canceled", "expired", expires_at)
    assert expired.amount_capturable == 0
    charge = client.v1.charges.retrieve(pi.latest_charge)  # type: ignore[arg-type]
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (False, 0, 0, False)
    assert fake.refunds == {}


def test_an_expired_hold_cannot_be_captured(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa", capture_method="manual")
    fake.clock.advance(8 * DAY)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.capture(pi.id)

    error = refused.value
    assert (error.http_status, error.code) == (400, "payment_intent_unexpected_state")
    assert "could not be captured because it has a status of canceled" in (error.user_message or "")
    assert error.error.payment_intent.cancellation_reason == "expired"  # type: ignore[union-attr]


def test_a_captured_or_released_hold_does_not_expire(fake: FakeStripe, client: stripe.StripeClient) -> None:
    captured = create(client, "pm_card_visa", capture_method="manual")
    released = create(client, "pm_card_visa", capture_method="manual")
    client.v1.payment_intents.capture(captured.id)
    client.v1.payment_intents.cancel(released.id)

    fake.clock.advance(8 * DAY)

    assert client.v1.payment_intents.retrieve(captured.id).status == "succeeded"
    assert client.v1.payment_intents.retrieve(released.id).cancellation_reason is None
    assert not [e for e in fake.events if e["type"] == "charge.expired"]
