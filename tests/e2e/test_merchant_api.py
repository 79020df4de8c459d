"""The merchant API on the local stack: IAM-signed requests only, an order started once, its status and, while
the customer must act, the client_secret the checkout page needs (read from Stripe, stored nowhere)."""

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from local_runtime.checkout import local_merchant_api
from local_runtime.scenarios import order_input
from web.merchant_api import MerchantApi, MerchantApiError

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def merchant(cloud) -> MerchantApi:
    return local_merchant_api(cloud)


def new_order(payment_method: str | None = None) -> dict[str, Any]:
    return order_input(f"shop-{uuid.uuid4().hex[:10]}", payment_method, (("MUG-BLUE", 1),))


def eventually(read, check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def payment_of(merchant: MerchantApi, order_id: str) -> dict[str, Any] | None:
    try:
        return merchant.payment(order_id)
    except MerchantApiError as error:
        if error.status == 404:
            return None
        raise


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param(
            {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAOTHER/20261130/us-east-1/execute-api/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "X-Amz-Date": "20261130T000000Z"},
            id="someone-elses-key",
        ),
    ],
)  # fmt: skip
def test_the_merchant_api_answers_only_signed_requests(cloud, headers: dict[str, str]) -> None:
    request = urllib.request.Request(cloud.url_of("/payments"), data=json.dumps(new_order()).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request)

    assert refused.value.code == 403


def test_an_invalid_order_is_refused_naming_the_field(merchant) -> None:
    with pytest.raises(MerchantApiError) as refused:
        merchant.start_payment({**new_order(), "amount": -5})

    assert refused.value.status == 400
    assert refused.value.body["error"]["field"] == "amount"


def test_an_on_session_payment_hands_the_checkout_page_its_client_secret(cloud, stripe, merchant) -> None:
    # Given an order without a payment method: the customer will pay in the browser
    order = new_order()

    started = merchant.start_payment(order)
    status = eventually(lambda: payment_of(merchant, order["orderId"]), lambda s: s and "payment" in s)

    # Then the status says the customer must act, with the PaymentIntent's client_secret, as Stripe has it
    assert started["statusUrl"] == f"/payments/{order['orderId']}"
    assert status["status"] == "payment_requested"
    payment = status["payment"]
    assert payment["status"] == "requires_payment_method"
    assert payment["clientSecret"] == stripe.payment_intents[payment["paymentIntentId"]]["client_secret"]
    # and a second request for the same order starts nothing new
    assert merchant.start_payment(order)["executionArn"] == started["executionArn"]


def test_an_order_started_with_another_input_is_refused(merchant) -> None:
    order = new_order()
    merchant.start_payment(order)

    with pytest.raises(MerchantApiError) as refused:
        merchant.start_payment({**order, "items": [{"sku": "TEA-EARL", "quantity": 1, "unitAmount": 1000}]})

    assert refused.value.status == 409
    assert refused.value.body["error"]["statusUrl"] == f"/payments/{order['orderId']}"


def test_a_paid_order_shows_no_client_secret(merchant) -> None:
    order = new_order("pm_card_visa")

    merchant.start_payment(order)
    status = eventually(lambda: payment_of(merchant, order["orderId"]), lambda s: s and s["status"] == "fulfilled")

    assert status["status"] == "fulfilled"
    assert status["payment"]["status"] == "succeeded"
    assert "clientSecret" not in status["payment"]
