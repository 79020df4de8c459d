"""The publishable key and the client_secret, as Stripe.js calls the API (https://docs.stripe.com/keys,
https://docs.stripe.com/api/payment_intents/retrieve): the subset the browser may call, and nothing else."""

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from local_runtime.fake_stripe.access import PUBLISHABLE_REFUSED
from local_runtime.fake_stripe.payment_intents import PUBLISHABLE_FIELDS
from tests.local._support import PI, create, raw_request


@pytest.fixture
def browser_client(fake: FakeStripe) -> stripe.StripeClient:
    """stripe-python holding the publishable key: it sends it as Bearer auth, which Stripe accepts too."""
    return stripe.StripeClient(fake.publishable_key, base_addresses={"api": fake.url})


def test_the_fake_has_a_publishable_key_beside_the_secret_key() -> None:
    with FakeStripe(api_key="sk_test_shop", publishable_key="pk_test_shop") as fake:
        assert (fake.api_key, fake.publishable_key) == ("sk_test_shop", "pk_test_shop")
    assert FakeStripe().publishable_key == "pk_test_local"


def test_the_payment_intent_carries_its_client_secret(client: stripe.StripeClient) -> None:
    pi = create(client)
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    assert client.v1.payment_intents.retrieve(pi.id).client_secret == pi.client_secret


def test_the_browser_retrieves_a_payment_intent_with_its_client_secret(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"}).id
    pi = create(client, customer=customer)
    status, seen = raw_request(fake, "GET", f"{PI}/{pi.id}?key={fake.publishable_key}&client_secret={pi.client_secret}")
    assert status == 200 and seen["status"] == "requires_payment_method"
    assert set(seen) == set(PUBLISHABLE_FIELDS)  # "only returns a subset of properties"
    assert "metadata" not in seen and "customer" not in seen
    assert fake.requests[-1].publishable


def test_a_wrong_client_secret_is_refused(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi, other = create(client), create(client)
    for method, path, body in [
        ("GET", f"{PI}/{pi.id}?key={fake.publishable_key}&client_secret={other.client_secret}", ""),
        ("POST", f"{PI}/{pi.id}/confirm", f"key={fake.publishable_key}&client_secret={pi.id}_secret_nope"
         "&payment_method=pm_card_visa"),
    ]:  # fmt: skip
        status, answer = raw_request(fake, method, path, body)
        assert status == 400, answer
        assert (answer["error"]["code"], answer["error"]["param"]) == (
            "payment_intent_invalid_parameter",
            "client_secret",
        )
    assert fake.payment_intents[pi.id]["status"] == "requires_payment_method"


def test_the_browser_confirms_with_the_client_secret(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client)
    body = (
        f"key={fake.publishable_key}&client_secret={pi.client_secret}&return_url=https%3A%2F%2Fshop.test%2Fdone"
        "&payment_method_data[type]=card&payment_method_data[card][number]=4242424242424242"
        "&payment_method_data[card][exp_month]=12&payment_method_data[card][exp_year]=2040"
        "&payment_method_data[card][cvc]=123"
    )
    status, paid = raw_request(fake, "POST", f"{PI}/{pi.id}/confirm", body)
    assert status == 200 and paid["status"] == "succeeded" and set(paid) == set(PUBLISHABLE_FIELDS)
    assert fake.payment_methods[paid["payment_method"]]["card"]["last4"] == "4242"


def test_the_browser_creates_payment_methods(browser_client: stripe.StripeClient) -> None:
    pm = browser_client.v1.payment_methods.create(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040}}  # type: ignore[typeddict-item]
    )
    assert pm.id.startswith("pm_")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.v1.payment_intents.create({"amount": 100, "currency": "eur"}),
        lambda c: c.v1.payment_intents.list(),
        lambda c: c.v1.payment_intents.retrieve("pi_123"),  # no client_secret
        lambda c: c.v1.payment_intents.cancel("pi_123"),
        lambda c: c.v1.refunds.create({"payment_intent": "pi_123"}),
        lambda c: c.v1.customers.create(),
        lambda c: c.v1.payment_methods.attach("pm_card_visa", {"customer": "cus_1"}),
        lambda c: c.v1.events.list(),
    ],
)
def test_anything_else_is_refused_to_the_publishable_key(
    fake: FakeStripe, browser_client: stripe.StripeClient, call
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(stripe.PermissionError) as exc:
        call(browser_client)
    assert (exc.value.http_status, exc.value.user_message) == (403, PUBLISHABLE_REFUSED)
    assert fake.payment_intents == {} and fake.customers == {} and fake.events == []


def test_the_browser_may_not_confirm_off_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client)
    body = f"key={fake.publishable_key}&client_secret={pi.client_secret}&payment_method=pm_card_visa&off_session=true"
    status, answer = raw_request(fake, "POST", f"{PI}/{pi.id}/confirm", body)
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, "parameter_unknown", "off_session")


def test_an_unknown_publishable_key_is_refused(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client)
    status, answer = raw_request(fake, "GET", f"{PI}/{pi.id}?key=pk_test_someone_else&client_secret={pi.client_secret}")
    assert status == 401 and answer["error"]["message"].startswith("Invalid API Key provided")


def test_api_answers_allow_the_checkout_page_origin(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client)
    assert pi.last_response.headers["Access-Control-Allow-Origin"] == "*"
