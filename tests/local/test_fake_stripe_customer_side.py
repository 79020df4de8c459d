"""The customer's side: the stand-in Stripe.js the fake serves at /v3/ (run in Node against the fake, when Node
is installed) and the Python Browser that makes the same calls. Stripe.js's signatures and result shapes are
those of https://docs.stripe.com/js/payment_intents/confirm_payment,
https://docs.stripe.com/js/payment_intents/retrieve_payment_intent,
https://docs.stripe.com/js/payment_intents/handle_next_action and https://docs.stripe.com/js/elements/submit."""

import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from local_runtime.fake_stripe import Browser, FakeStripe
from tests.local._support import create, run_stripe_js


@pytest.fixture
def browser(fake: FakeStripe) -> Browser:
    return Browser(fake.url, fake.publishable_key)


# ------------------------------------------------------------------ the Python customer


def test_the_customer_pays_with_a_card(fake: FakeStripe, client: stripe.StripeClient, browser: Browser) -> None:
    customer = client.v1.customers.create({"email": "ada@example.com"}).id
    pi = create(client, customer=customer)
    result = browser.pay(pi.client_secret, "4242424242424242")
    assert result.error is None and result.status == "succeeded" and "metadata" not in result.payment_intent
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert [r.publishable for r in fake.requests] == [False, False, True, False]  # merchant x2, customer, merchant


def test_after_a_decline_the_customer_pays_with_another_card_on_the_same_payment_intent(
    client: stripe.StripeClient, browser: Browser
) -> None:
    pi = create(client)
    declined = browser.pay(pi.client_secret, "4000000000000002")
    assert declined.payment_intent is None and declined.error is not None
    error = declined.error
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", "card_declined", "generic_decline")
    assert error["message"] == "Your card was declined."
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert browser.pay(pi.client_secret, "4242424242424242").status == "succeeded"


@pytest.mark.parametrize(
    ("answer", "status"), [("complete", "succeeded"), ("fail", "requires_payment_method"), (None, "requires_action")]
)
def test_three_d_secure_answers(client: stripe.StripeClient, browser: Browser, answer: str | None, status: str) -> None:
    pi = create(client)
    result = browser.pay(pi.client_secret, "4000002500003155", three_d_secure=answer)
    seen = result.payment_intent or result.error["payment_intent"]  # type: ignore[index]
    assert seen["status"] == status
    if answer == "fail":
        assert result.error["code"] == "payment_intent_authentication_failure"  # type: ignore[index]


def test_a_saved_card_on_session(client: stripe.StripeClient, browser: Browser) -> None:
    customer = client.v1.customers.create().id
    saved = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer}).id
    for _ in range(2):
        pi = create(client, customer=customer)
        assert browser.pay(pi.client_secret, payment_method=saved).status == "succeeded"


def test_the_customer_creates_a_payment_method_and_reads_the_payment_intent(
    client: stripe.StripeClient, browser: Browser
) -> None:
    made = browser.create_payment_method("4242424242424242")
    assert made.payment_method is not None and made.payment_method["card"]["last4"] == "4242"
    assert browser.create_payment_method("1234").error["code"] == "incorrect_number"  # type: ignore[index]
    pi = create(client)
    assert browser.retrieve_payment_intent(pi.client_secret).status == "requires_payment_method"
    wrong = browser.retrieve_payment_intent(f"{pi.id}_secret_wrong")
    assert wrong.error is not None and wrong.error["code"] == "payment_intent_invalid_parameter"


def test_handle_next_action_wants_requires_action(client: stripe.StripeClient, browser: Browser) -> None:
    pi = create(client)
    with pytest.raises(ValueError, match="not requires_action"):
        browser.handle_next_action(pi.client_secret)
    waiting = create(client, "pm_card_authenticationRequired")
    assert browser.handle_next_action(waiting.client_secret).status == "succeeded"


# ------------------------------------------------------------------ Stripe.js


def test_stripe_js_is_served_at_v3(fake: FakeStripe) -> None:
    with urllib.request.urlopen(f"{fake.url}/v3/") as response:
        code = response.read().decode()
        assert response.headers["Content-Type"].startswith("application/javascript")
    assert "global.Stripe = Stripe" in code
    assert "import " not in code and "require(" not in code  # no dependencies


def test_stripe_js_confirms_payments_in_node(fake: FakeStripe, client: stripe.StripeClient) -> None:
    declined_then_paid, three_ds, failed_3ds, redirected, server_side = (create(client) for _ in range(5))
    waiting = create(client, "pm_card_authenticationRequired")
    results = run_stripe_js(
        fake,
        [
            {"clientSecret": declined_then_paid.client_secret, "card": {"number": "4000000000009995"}},
            {"clientSecret": declined_then_paid.client_secret, "card": {"number": "4242 4242 4242 4242"}},
            {"clientSecret": three_ds.client_secret, "card": {"number": "4000002760003184"}, "answer": "complete"},
            {"clientSecret": failed_3ds.client_secret, "card": {"number": "4000002760003184"}, "answer": "fail"},
            {"clientSecret": server_side.client_secret, "card": {"number": "4242424242424241"}},
            {"clientSecret": redirected.client_secret, "card": {"number": "4242424242424242"}, "redirect": "always"},
            {"do": "retrieve", "clientSecret": redirected.client_secret},
            {"do": "handle_next_action", "clientSecret": waiting.client_secret},
            {"do": "integration_error", "key": fake.api_key},
        ],
    )
    declined, paid, authenticated, refused, invalid, redirect, retrieved, handled, wrong_key = results

    assert declined["submitted"] == {"selectedPaymentMethod": "card"}
    assert declined["events"][0] == "ready" and declined["events"][-1] == "change:true"
    error = declined["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error",
        "card_declined",
        "insufficient_funds",
    )
    assert error["message"] == "Your card has insufficient funds."
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert paid["paymentIntent"]["status"] == "succeeded" and "error" not in paid

    assert authenticated["paymentIntent"]["status"] == "succeeded"
    assert authenticated["modals"]["opened"] == 1 and authenticated["modals"]["open"] == 0
    assert refused["error"]["code"] == "payment_intent_authentication_failure"
    assert refused["error"]["payment_intent"]["status"] == "requires_payment_method"

    assert invalid["submitted"]["error"] == {
        "type": "validation_error",
        "code": "invalid_number",
        "message": "Your card number is invalid.",
    }
    assert fake.payment_intents[server_side.id]["status"] == "requires_payment_method"

    assert redirect["pending"] is True  # Stripe.js has navigated away: the promise never settles
    landing = urlsplit(redirect["assigned"][-1])
    assert f"{landing.scheme}://{landing.netloc}{landing.path}" == "http://shop.test/done"
    query = parse_qs(landing.query)
    assert query["payment_intent"] == [redirected.id] and query["redirect_status"] == ["succeeded"]
    assert query["payment_intent_client_secret"] == [redirected.client_secret]
    assert retrieved["paymentIntent"]["status"] == "succeeded"

    assert handled["paymentIntent"]["status"] == "succeeded"
    assert wrong_key == {"threw": "IntegrationError"}
    assert {pi["status"] for pi in fake.payment_intents.values()} == {"succeeded", "requires_payment_method"}


def test_a_payment_for_a_customer_the_account_does_not_have_is_refused(client: stripe.StripeClient) -> None:
    # https://docs.stripe.com/api/errors: an id that names nothing is 400 resource_missing, "No such customer"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create(client, customer="cus_NeverCreated")

    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "resource_missing", "customer")
