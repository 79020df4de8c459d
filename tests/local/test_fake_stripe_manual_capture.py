"""Manual capture in the fake Stripe, driven by stripe-python: authorize and hold a card, then capture or release it
(authorizations.py, capture_methods.py).

Stripe's pages each test follows: https://docs.stripe.com/payments/place-a-hold-on-a-payment-method (the hold, its
events and `capture_before`), https://docs.stripe.com/api/payment_intents/capture (capture, `amount_to_capture`),
https://docs.stripe.com/api/payment_intents/cancel (release), the 2025-03-31.basil change "Partially capturing or
canceling payments no longer creates a Refund"
(https://docs.stripe.com/changelog/basil/2025-03-31/remove-refund-from-partial-capture-and-payment-cancellation-flow),
https://docs.stripe.com/api/payment_intents/create#create_payment_intent-payment_method_options-card-capture_method
(manual capture for cards only) and https://docs.stripe.com/api/idempotent_requests. Expiry is in
test_fake_stripe_authorization_expiry.py.
"""

from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import Browser, FakeStripe
from tests.local._support import WebhookReceiver, create, run_stripe_js

HELD = "requires_capture"
MANUAL: dict[str, Any] = {"capture_method": "manual"}
CARDS_ONLY_MANUAL: dict[str, Any] = {"payment_method_options": {"card": {"capture_method": "manual"}}}
NOT_FOR_BANK_DEBITS = (
    'The following payment method types ["{type}"] can only be used with PaymentIntents that have '
    "capture_method=automatic. Please retry by creating a PaymentIntent with capture_method=automatic."
)


def charge_of(client: stripe.StripeClient, pi: stripe.PaymentIntent) -> stripe.Charge:
    return client.v1.charges.retrieve(pi.latest_charge)  # type: ignore[arg-type]


def unexpected_state(error: stripe.InvalidRequestError, status: str) -> None:
    assert (error.http_status, error.code) == (400, "payment_intent_unexpected_state")
    assert error.user_message == (
        f"This PaymentIntent could not be captured because it has a status of {status}. Only a PaymentIntent with "
        "one of the following statuses may be captured: requires_capture."
    )
    assert error.error.payment_intent.status == status  # type: ignore[union-attr]


# ------------------------------------------------------------------ the hold


@pytest.mark.parametrize("manual", [MANUAL, CARDS_ONLY_MANUAL], ids=["capture_method", "card_option"])
def test_a_card_payment_with_manual_capture_is_held(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver, manual: dict[str, Any]
) -> None:
    # Given a PaymentIntent that captures cards by hand, top-level or through the card's option
    pi = create(client, "pm_card_visa", **manual)

    # Then the card is authorized, not charged: the amount is held and capturable
    assert (pi.status, pi.amount_capturable, pi.amount_received) == (HELD, 2500, 0)
    assert pi.capture_method == ("manual" if manual is MANUAL else "automatic_async")
    if manual is CARDS_ONLY_MANUAL:
        assert pi.payment_method_options.card.capture_method == "manual"  # type: ignore[union-attr]
    charge = charge_of(client, pi)
    assert (charge.status, charge.paid, charge.captured, charge.amount_captured) == ("succeeded", True, False, 0)
    card = charge.payment_method_details.card  # type: ignore[union-attr]
    assert card.capture_before > charge.created and card.brand == "visa"  # type: ignore[union-attr]
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
    ]


def test_capturing_the_hold_charges_the_card(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)

    captured = client.v1.payment_intents.capture(pi.id, {"metadata": {"reserved": "yes"}})

    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 2500, 0)
    assert captured.metadata.to_dict() == {"order_id": "ord_1", "reserved": "yes"}
    charge = charge_of(client, pi)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded) == (True, 2500, 0)
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[-2:] == ["charge.captured", "payment_intent.succeeded"]
    assert "v1.charge.captured" in [thin["type"] for thin in fake.thin_events]


def test_a_partial_capture_releases_the_rest_and_creates_no_refund(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)

    captured = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 1500})

    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 1500, 0)
    charge = charge_of(client, pi)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.refunded) == (2500, 1500, 0, False)
    assert fake.refunds == {}  # since 2025-03-31.basil the released rest is no Refund
    with pytest.raises(stripe.InvalidRequestError) as again:  # "Authorized payments can only be captured once"
        client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 1000})
    unexpected_state(again.value, "succeeded")


def test_capturing_more_than_the_hold_is_refused(client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2501})

    error = refused.value
    assert (error.http_status, error.code, error.param) == (400, "amount_too_large", "amount_to_capture")
    assert error.user_message == (
        "The payment could not be captured because the requested capture amount is greater than the amount you can "
        "capture for this charge."
    )
    assert client.v1.payment_intents.retrieve(pi.id).status == HELD


def test_only_a_held_payment_can_be_captured(client: stripe.StripeClient) -> None:
    paid = create(client, "pm_card_visa")
    waiting = create(client)
    released = create(client, "pm_card_visa", **MANUAL)
    client.v1.payment_intents.cancel(released.id)

    for pi, status in ((paid, "succeeded"), (waiting, "requires_payment_method"), (released, "canceled")):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.payment_intents.capture(pi.id)
        unexpected_state(refused.value, status)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.capture("pi_NeverCreated")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_a_capture_is_idempotent_under_its_key(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)
    key = {"idempotency_key": "ord_1:capture"}

    first = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2000}, key)
    replay = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2000}, key)

    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert replay.to_dict() == first.to_dict() and replay.amount_received == 2000
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2500}, key)
    fake.wait_for_deliveries()
    assert receiver.types(pi.id).count("charge.captured") == 1


# ------------------------------------------------------------------ release, refunds


def test_canceling_the_hold_releases_it_without_a_refund(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)

    canceled = client.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "requested_by_customer"})

    assert (canceled.status, canceled.amount_capturable, canceled.amount_received) == ("canceled", 0, 0)
    assert canceled.cancellation_reason == "requested_by_customer"
    charge = charge_of(client, pi)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (False, 0, 0, False)
    assert fake.refunds == {}
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[-1] == "payment_intent.canceled" and "charge.refunded" not in receiver.types(pi.id)


def test_a_captured_payment_is_refunded_as_any_other(client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa", **MANUAL)
    with pytest.raises(stripe.InvalidRequestError):  # a hold is no successful charge: cancel it instead
        client.v1.refunds.create({"payment_intent": pi.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": pi.latest_charge})  # type: ignore[typeddict-item]
    client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 2000})

    refund = client.v1.refunds.create({"payment_intent": pi.id})

    assert (refund.amount, refund.status) == (2000, "succeeded")
    charge = charge_of(client, pi)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)


# ------------------------------------------------------------------ which payment methods can be held


@pytest.mark.parametrize(
    ("pm", "type_"), [("pm_success_de", "sepa_debit"), ("pm_usBankAccount_success", "us_bank_account")]
)
def test_a_bank_debit_cannot_be_held(fake: FakeStripe, client: stripe.StripeClient, pm: str, type_: str) -> None:
    # When the whole PaymentIntent is manual, a bank debit is refused, on creation as on confirmation
    with pytest.raises(stripe.InvalidRequestError) as on_create:
        create(client, pm, **MANUAL)
    with pytest.raises(stripe.InvalidRequestError) as with_types:
        create(client, payment_method_types=["card", type_], **MANUAL)
    pi = create(client, **MANUAL)
    with pytest.raises(stripe.InvalidRequestError) as on_confirm:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": pm})

    for refused in (on_create, with_types, on_confirm):
        assert (refused.value.http_status, refused.value.error.type) == (400, "invalid_request_error")  # type: ignore[union-attr]
        assert refused.value.user_message == NOT_FOR_BANK_DEBITS.format(type=type_)
    assert (
        len(fake.payment_intents) == 1 and client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
    )


def test_a_bank_debit_is_captured_automatically_when_only_cards_are_manual(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    pi = create(client, "pm_success_de", **CARDS_ONLY_MANUAL)

    assert (pi.status, pi.capture_method, pi.amount_capturable) == ("processing", "automatic_async", 0)
    fake.settle(pi.id)
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as unknown:  # a bank debit has no capture_method option
        create(client, "pm_success_de", payment_method_options={"sepa_debit": {"capture_method": "manual"}})
    assert (unknown.value.code, unknown.value.param) == (
        "parameter_unknown",
        "payment_method_options[sepa_debit][capture_method]",
    )


def test_manual_capture_can_be_chosen_on_confirmation(client: stripe.StripeClient) -> None:
    pi = create(client)

    held = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa", "capture_method": "manual"})

    assert (held.status, held.capture_method) == (HELD, "manual")


# ------------------------------------------------------------------ the customer's side


def test_the_customer_confirms_a_held_payment_as_any_other(fake: FakeStripe, client: stripe.StripeClient) -> None:
    browser = Browser(fake.url, fake.publishable_key)
    typed, authenticated = create(client, **MANUAL), create(client, **MANUAL)

    assert browser.pay(typed.client_secret, "4242424242424242").status == HELD
    assert browser.pay(authenticated.client_secret, "4000002760003184", three_d_secure="complete").status == HELD
    waiting = create(client, "pm_card_authenticationRequired", **MANUAL)
    fake.complete_3ds(waiting.id)
    assert client.v1.payment_intents.retrieve(waiting.id).amount_capturable == 2500


def test_stripe_js_confirms_a_held_payment(fake: FakeStripe, client: stripe.StripeClient) -> None:
    stays, redirected = create(client, **MANUAL), create(client, **CARDS_ONLY_MANUAL)
    results = run_stripe_js(
        fake,
        [
            {"clientSecret": stays.client_secret, "card": {"number": "4000002760003184"}, "answer": "complete"},
            {"clientSecret": redirected.client_secret, "card": {"number": "4242424242424242"}, "redirect": "always"},
        ],
    )

    assert results[0]["paymentIntent"]["status"] == HELD and "error" not in results[0]
    assert "redirect_status=succeeded" in results[1]["assigned"][-1]
    assert fake.payment_intents[redirected.id]["status"] == HELD
