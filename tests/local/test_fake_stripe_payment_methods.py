"""PaymentMethods and Customers as objects, and when a payment may use a PaymentMethod, pinned to Stripe
(https://docs.stripe.com/api/payment_methods, https://docs.stripe.com/api/customers,
https://docs.stripe.com/testing, https://docs.stripe.com/payments/save-and-reuse)."""

from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from local_runtime.fake_stripe.payment_methods import ATTACH_AFTER_USE, LIVE_CARD, USED_WITHOUT_CUSTOMER
from tests.local._support import create


def card(number: str, **extra: Any) -> dict[str, Any]:
    return {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123", **extra}}


def test_a_card_number_makes_a_payment_method(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pm = client.v1.payment_methods.create(card("4242424242424242"))  # type: ignore[arg-type]
    assert pm.id.startswith("pm_") and pm.object == "payment_method" and pm.type == "card"
    assert (pm.card.brand, pm.card.last4, pm.card.exp_month, pm.card.exp_year) == ("visa", "4242", 12, 2040)
    assert pm.customer is None and pm.livemode is False
    assert client.v1.payment_methods.retrieve(pm.id).card.last4 == "4242"
    assert fake.payment_methods[pm.id]["card"]["last4"] == "4242"


@pytest.mark.parametrize(
    ("number", "extra", "code", "message"),
    [
        ("4242424242424241", {}, "incorrect_number", "Your card number is incorrect."),
        ("4111111111111111", {}, "card_declined", LIVE_CARD),  # a valid number, but not one of Stripe's test cards
        ("4242424242424242", {"exp_year": 2001}, "invalid_expiry_year", "Your card's expiration year is invalid."),
        ("4242424242424242", {"exp_month": 13}, "invalid_expiry_month", "Your card's expiration month is invalid."),
    ],
)
def test_card_details_stripe_refuses(
    client: stripe.StripeClient, number: str, extra: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(stripe.CardError) as exc:
        client.v1.payment_methods.create(card(number, **extra))  # type: ignore[arg-type]
    assert (exc.value.http_status, exc.value.code, exc.value.user_message) == (402, code, message)


def test_each_use_of_a_test_payment_method_id_mints_a_new_payment_method(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    first, second = create(client, "pm_card_visa"), create(client, "pm_card_visa")
    assert first.payment_method != second.payment_method
    assert all(pi.payment_method.startswith("pm_") and pi.payment_method != "pm_card_visa" for pi in (first, second))
    assert fake.payment_methods[first.payment_method]["card"]["last4"] == "4242"
    assert fake.charges[first.latest_charge]["payment_method"] == first.payment_method
    attached = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": client.v1.customers.create().id})
    assert attached.id.startswith("pm_") and attached.card.brand == "mastercard"


def test_a_payment_method_used_without_a_customer_may_not_be_used_again(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    pm = client.v1.payment_methods.create(card("4242424242424242"))  # type: ignore[arg-type]
    assert create(client, pm.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, pm.id)
    assert (exc.value.http_status, exc.value.code, exc.value.user_message) == (400, None, USED_WITHOUT_CUSTOMER)
    assert exc.value.error.type == "invalid_request_error"
    waiting = create(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(waiting.id, {"payment_method": pm.id})
    with pytest.raises(stripe.InvalidRequestError) as attach:
        client.v1.payment_methods.attach(pm.id, {"customer": client.v1.customers.create().id})
    assert attach.value.user_message == ATTACH_AFTER_USE
    assert fake.payment_intents[waiting.id]["status"] == "requires_payment_method"


def test_a_declined_payment_method_is_spent_too(client: stripe.StripeClient) -> None:
    pm = client.v1.payment_methods.create(card("4000000000009995"))  # type: ignore[arg-type]
    with pytest.raises(stripe.CardError) as declined:
        create(client, pm.id)
    pi = declined.value.error.payment_intent
    assert pi.status == "requires_payment_method" and pi.last_payment_error.payment_method.id == pm.id
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": pm.id})
    assert again.value.user_message == USED_WITHOUT_CUSTOMER


def test_a_payment_method_attached_to_a_customer_pays_again_for_that_customer_only(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"})
    pm = client.v1.payment_methods.create(card("4242424242424242"))  # type: ignore[arg-type]
    assert client.v1.payment_methods.attach(pm.id, {"customer": customer.id}).customer == customer.id
    for _ in range(2):
        assert create(client, pm.id, customer=customer.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as other:
        create(client, pm.id, customer=client.v1.customers.create().id)
    assert other.value.param == "payment_method" and "must be attached to the customer" in str(other.value)
    with pytest.raises(stripe.InvalidRequestError):
        create(client, pm.id)  # no customer on the PaymentIntent
    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.payment_methods.attach(pm.id, {"customer": client.v1.customers.create().id})
    assert "already been attached" in str(taken.value)
    assert fake.payment_methods[pm.id]["customer"] == customer.id


def test_customers(fake: FakeStripe, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com", "name": "Ada", "metadata": {"k": "v"}})
    assert customer.id.startswith("cus_") and customer.object == "customer"
    fetched = client.v1.customers.retrieve(customer.id)
    assert (fetched.email, fetched.name, fetched.metadata.to_dict()) == ("ada@example.com", "Ada", {"k": "v"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_methods.attach("pm_card_visa", {"customer": "cus_missing"})
    assert (unknown.value.http_status, unknown.value.code, unknown.value.param) == (400, "resource_missing", "customer")
    assert list(fake.customers) == [customer.id]
