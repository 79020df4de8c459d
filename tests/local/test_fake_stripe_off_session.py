"""Saved cards charged off-session, pinned to Stripe: a card that needs authentication declines with
`authentication_required` and the PaymentIntent returns to `requires_payment_method`
(https://docs.stripe.com/payments/save-during-payment#charge-saved-payment-method); Stripe's regulatory test
cards behave as https://docs.stripe.com/testing#regulatory-cards says; a declined saved card may be confirmed
again on the same PaymentIntent."""

import pytest
import stripe

from local_runtime.fake_stripe import Browser, FakeStripe
from tests.local._support import create


def saved_card(client: stripe.StripeClient, number: str) -> tuple[str, str]:
    """(customer id, PaymentMethod id) of a card attached with /attach (not set up by a payment)."""
    customer = client.v1.customers.create().id
    pm = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040}}  # type: ignore[typeddict-item]
    )
    client.v1.payment_methods.attach(pm.id, {"customer": customer})
    return customer, pm.id


def charge_off_session(client: stripe.StripeClient, customer: str, pm: str) -> stripe.PaymentIntent:
    return create(client, pm, customer=customer, off_session=True)


@pytest.mark.parametrize("number", ["4000002760003184", "4000000000003220", "4000002500003155"])
def test_a_card_that_needs_authentication_declines_off_session(
    fake: FakeStripe, client: stripe.StripeClient, number: str
) -> None:
    customer, pm = saved_card(client, number)
    with pytest.raises(stripe.CardError) as exc:
        charge_off_session(client, customer, pm)
    error = exc.value.error
    assert exc.value.http_status == 402
    assert (error.code, error.decline_code) == ("authentication_required", "authentication_required")
    assert error.payment_intent.status == "requires_payment_method"
    assert error.payment_intent.last_payment_error.code == "authentication_required"
    assert fake.payment_intents[error.payment_intent.id]["next_action"] is None


def test_a_saved_card_that_needs_no_authentication_pays_off_session(client: stripe.StripeClient) -> None:
    customer, pm = saved_card(client, "4242424242424242")
    for _ in range(2):
        assert charge_off_session(client, customer, pm).status == "succeeded"


def test_an_already_set_up_card_authenticates_on_session_only(client: stripe.StripeClient) -> None:
    customer, pm = saved_card(client, "4000003800000446")
    assert charge_off_session(client, customer, pm).status == "succeeded"
    assert create(client, pm, customer=customer).status == "requires_action"


def test_a_card_set_up_by_an_on_session_payment_pays_off_session_later(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create().id
    first = create(client, customer=customer, setup_future_usage="off_session")
    paid = Browser(fake.url, fake.publishable_key).pay(first.client_secret, "4000002500003155")
    assert paid.status == "succeeded"
    pm = fake.payment_intents[first.id]["payment_method"]
    assert fake.payment_methods[pm]["customer"] == customer  # saved by setup_future_usage
    assert charge_off_session(client, customer, pm).status == "succeeded"


def test_a_declined_saved_card_can_be_confirmed_again_on_the_same_payment_intent(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer, pm = saved_card(client, "4000000000009995")
    with pytest.raises(stripe.CardError) as first:
        charge_off_session(client, customer, pm)
    pi_id = first.value.error.payment_intent.id
    with pytest.raises(stripe.CardError) as again:  # the same saved card, later: declined, not refused
        client.v1.payment_intents.confirm(pi_id, {"payment_method": pm, "off_session": True})
    assert again.value.error.decline_code == "insufficient_funds"
    other = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})  # the customer's second card
    paid = client.v1.payment_intents.confirm(pi_id, {"payment_method": other.id, "off_session": True})
    assert paid.status == "succeeded" and len([c for c in fake.charges.values() if c["payment_intent"] == pi_id]) == 3


def test_off_session_needs_confirm(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, off_session=True)
    assert exc.value.param == "off_session"
