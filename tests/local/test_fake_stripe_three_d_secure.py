"""3-D Secure moves on only by the customer's path, pinned to Stripe: next_action's two shapes
(https://docs.stripe.com/api/payment_intents/object#payment_intent_object-next_action), the hosted test page
with "Complete" and "Fail" (https://docs.stripe.com/testing#regulatory-cards), and the redirect back to
return_url with payment_intent, payment_intent_client_secret and redirect_status
(https://docs.stripe.com/payments/accept-a-payment?platform=web#web-post-payment)."""

import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from local_runtime.fake_stripe import Browser, FakeStripe
from tests.local._support import WebhookReceiver, create

THREE_DS = "pm_card_authenticationRequired"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def browser(fake: FakeStripe) -> Browser:
    return Browser(fake.url, fake.publishable_key)


def test_without_return_url_next_action_is_use_stripe_sdk(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, THREE_DS)
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"
    sdk = pi.next_action.use_stripe_sdk
    assert sdk.type == "three_d_secure_redirect" and sdk.source.startswith("src_")
    assert sdk.stripe_js.startswith(f"{fake.url}/redirect/authenticate/{sdk.source}?client_secret=")


def test_with_return_url_next_action_is_redirect_to_url(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, THREE_DS, return_url="https://shop.test/done?order=1")
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.test/done?order=1"
    assert pi.next_action.redirect_to_url.url.startswith(f"{fake.url}/redirect/authenticate/src_")


def test_stripe_js_gets_use_stripe_sdk_even_with_a_return_url(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client)
    result = Browser(fake.url, fake.publishable_key).pay(
        pi.client_secret, "4000002760003184", three_d_secure=None, return_url="https://shop.test/done"
    )
    assert result.status == "requires_action" and result.payment_intent["next_action"]["type"] == "use_stripe_sdk"


def test_the_hosted_page_is_plain_html_with_complete_and_fail(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, THREE_DS)
    status, page = get(pi.next_action.use_stripe_sdk.stripe_js)
    assert status == 200 and ">Complete</button>" in page and ">Fail</button>" in page
    assert "<script" not in page and "<link" not in page and "http" not in page.split("<body>", 1)[1]


@pytest.mark.parametrize(
    ("complete", "status", "redirect_status"),
    [(True, "succeeded", "succeeded"), (False, "requires_payment_method", "failed")],
)
def test_the_redirect_challenge_returns_the_customer_to_return_url(
    fake: FakeStripe,
    client: stripe.StripeClient,
    receiver: WebhookReceiver,
    browser: Browser,
    complete: bool,
    status: str,
    redirect_status: str,
) -> None:
    pi = create(client, THREE_DS, return_url="https://shop.test/done?order=1")
    location = browser.answer_challenge(pi.next_action.redirect_to_url.url, complete=complete)
    assert location is not None and location.startswith("https://shop.test/done?order=1&")
    query = parse_qs(urlsplit(location).query)
    assert query["payment_intent"] == [pi.id] and query["payment_intent_client_secret"] == [pi.client_secret]
    assert query["redirect_status"] == [redirect_status]
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == status
    if not complete:
        assert after.last_payment_error.code == "payment_intent_authentication_failure"
        assert after.last_payment_error.type == "invalid_request_error"
    fake.wait_for_deliveries()
    last = "payment_intent.succeeded" if complete else "payment_intent.payment_failed"
    assert receiver.types(pi.id)[-1] == last
    assert [e for e in fake.events if e["type"] == last][-1]["request"]["id"] is None  # the customer's doing


def test_a_challenge_is_answered_once_and_only_with_its_secret(
    fake: FakeStripe, client: stripe.StripeClient, browser: Browser
) -> None:
    pi = create(client, THREE_DS)
    url = pi.next_action.use_stripe_sdk.stripe_js
    status, page = get(url.split("?")[0] + "?client_secret=src_client_secret_wrong")
    assert status == 400 and "No such authentication" in page
    browser.answer_challenge(url, complete=True)
    with pytest.raises(ValueError, match="no longer pending"):
        browser.answer_challenge(url, complete=False)
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_a_new_attempt_makes_the_old_challenge_stale(client: stripe.StripeClient, browser: Browser) -> None:
    pi = create(client, THREE_DS)
    old = pi.next_action.use_stripe_sdk.stripe_js
    again = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_authenticationRequired"})
    assert again.status == "requires_action" and again.next_action.use_stripe_sdk.stripe_js != old
    with pytest.raises(ValueError, match="no longer pending"):
        browser.answer_challenge(old, complete=True)
    canceled = client.v1.payment_intents.cancel(pi.id)
    assert canceled.status == "canceled"
    with pytest.raises(ValueError, match="no longer pending"):
        browser.answer_challenge(again.next_action.use_stripe_sdk.stripe_js, complete=True)


def test_nothing_the_merchant_calls_moves_requires_action(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, THREE_DS)
    client.v1.payment_intents.retrieve(pi.id)
    client.v1.payment_intents.list()
    assert fake.payment_intents[pi.id]["status"] == "requires_action"


def test_authentication_then_a_decline(client: stripe.StripeClient, browser: Browser) -> None:
    pi = create(client)
    result = browser.pay(pi.client_secret, "4000008260003178", three_d_secure="complete")
    assert result.error is not None and result.payment_intent is None
    assert (result.error["code"], result.error["decline_code"]) == ("card_declined", "insufficient_funds")
    assert result.error["payment_intent"]["status"] == "requires_payment_method"


@pytest.mark.parametrize("succeed", [True, False])
def test_complete_3ds_goes_through_the_customer_path(
    fake: FakeStripe, client: stripe.StripeClient, succeed: bool
) -> None:
    pi = create(client, THREE_DS)
    fake.complete_3ds(pi.id, succeed=succeed)
    assert client.v1.payment_intents.retrieve(pi.id).status == ("succeeded" if succeed else "requires_payment_method")
    browser_calls = [r for r in fake.requests if r.publishable]
    assert [(r.method, r.path) for r in browser_calls][0] == ("GET", f"/v1/payment_intents/{pi.id}")
    with pytest.raises(ValueError):
        fake.complete_3ds(pi.id, succeed=True)  # not waiting for 3-D Secure any more
    with pytest.raises(ValueError):
        fake.complete_3ds("pi_missing")
