"""web/merchant.py, the example shop's backend, over HTTP with a stand-in for the merchant API: the shop prices
the cart whatever the browser sends, and passes the page only what it needs."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from web.merchant import Shop, ShopServer
from web.merchant_api import MerchantApiError

CLIENT_SECRET = "pi_1_secret_2"


class MerchantApiStandIn:
    """Answers as the merchant API does; records the orders started."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.refusal: MerchantApiError | None = None

    def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        if self.refusal:
            raise self.refusal
        self.started.append(order)
        return {"orderId": order["orderId"], "executionArn": "arn:exec", "statusUrl": f"/payments/{order['orderId']}"}

    def payment(self, order_id: str) -> dict[str, Any]:
        if self.refusal:
            raise self.refusal
        if order_id != "order-1":
            raise MerchantApiError(404, {"error": {"message": "no order"}})
        payment = {"paymentIntentId": "pi_1", "status": "requires_payment_method", "clientSecret": CLIENT_SECRET}
        return {"orderId": order_id, "status": "payment_requested", "amount": 1500, "currency": "usd", "attempt": 2,
                "lastFailure": "generic_decline: Your card was declined.", "payment": payment}  # fmt: skip


@pytest.fixture
def api() -> MerchantApiStandIn:
    return MerchantApiStandIn()


@pytest.fixture
def shop_url(api: MerchantApiStandIn) -> Iterator[str]:
    server = ShopServer("127.0.0.1", 0, Shop(api, publishable_key="pk_test_123"))  # type: ignore[arg-type]
    server.serve_in_background()
    yield server.url.rstrip("/")
    server.shutdown()
    server.server_close()


def request(url: str, body: Any = None, content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    sent = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data else {})
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(sent, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_shop_prices_the_cart_whatever_the_browser_says(shop_url, api) -> None:
    items = [{"sku": "MUG-BLUE", "quantity": 2, "unitAmount": 1}, {"sku": "TEA-EARL", "quantity": 1}]
    cart = {"email": "ada@shop.example", "amount": 1, "items": items}

    status, _, body = request(f"{shop_url}/checkout", cart)

    assert status == 201
    [order] = api.started
    assert json.loads(body) == {"orderId": order["orderId"], "amount": 2500, "currency": "usd"}
    assert order["items"] == [
        {"sku": "MUG-BLUE", "quantity": 2, "unitAmount": 1000},
        {"sku": "TEA-EARL", "quantity": 1, "unitAmount": 500},
    ]
    assert order["customer"] == {"email": "ada@shop.example"} and "paymentMethod" not in order
    assert order["orderId"].startswith("order-") and len(order["orderId"]) > 30  # unguessable


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([], id="empty"),
        pytest.param([{"sku": "GOLD-BAR", "quantity": 1}], id="not-for-sale"),
        pytest.param([{"sku": "MUG-BLUE", "quantity": 0}], id="none"),
        pytest.param([{"sku": "MUG-BLUE", "quantity": 11}], id="too-many"),
        pytest.param([{"sku": "MUG-BLUE", "quantity": "2"}], id="quantity-text"),
        pytest.param([{"sku": "MUG-BLUE", "quantity": 1}, {"sku": "MUG-BLUE", "quantity": 1}], id="twice"),
        pytest.param("MUG-BLUE", id="not-a-list"),
    ],
)
def test_a_cart_the_shop_does_not_sell_starts_nothing(shop_url, api, items: Any) -> None:
    status, _, body = request(f"{shop_url}/checkout", {"email": "ada@shop.example", "items": items})

    assert status == 400 and json.loads(body)["error"]["message"]
    assert api.started == []


def test_a_bad_email_is_the_customers_to_fix_and_an_outage_is_not(shop_url, api) -> None:
    cart = {"email": "ada", "items": [{"sku": "MUG-BLUE", "quantity": 1}]}
    api.refusal = MerchantApiError(400, {"error": {"message": "...", "field": "customer.email", "reason": "..."}})
    assert request(f"{shop_url}/checkout", cart)[0:3:2] == (
        400,
        b'{"error": {"message": "Enter a valid e-mail address."}}',
    )

    api.refusal = MerchantApiError(403, {"message": "Forbidden"})
    status, _, body = request(f"{shop_url}/checkout", cart)
    assert status == 502 and b"Forbidden" not in body


def test_the_cart_comes_as_json_only(shop_url, api) -> None:
    assert request(f"{shop_url}/checkout", b"items=MUG-BLUE", "application/x-www-form-urlencoded")[0] == 415
    assert request(f"{shop_url}/checkout", b"{", "application/json")[0] == 400
    assert api.started == []


def test_the_page_gets_its_orders_status_and_client_secret_and_nobody_caches_it(shop_url) -> None:
    status, headers, body = request(f"{shop_url}/checkout/order-1")

    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {
        "orderId": "order-1", "status": "payment_requested", "amount": 1500, "currency": "usd", "attempt": 2,
        "lastFailure": "generic_decline: Your card was declined.", "paymentStatus": "requires_payment_method",
        "clientSecret": CLIENT_SECRET,
    }  # fmt: skip
    assert request(f"{shop_url}/checkout/order-2")[0] == 404  # not accepted (yet)
    assert request(f"{shop_url}/checkout/..%2Fconfig")[0] == 404


def test_the_page_and_its_config(shop_url) -> None:
    status, headers, page = request(f"{shop_url}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"/checkout.js" in page
    assert headers["Referrer-Policy"] == "same-origin"  # a URL Stripe returns to carries the client_secret
    assert request(f"{shop_url}/checkout.js")[1]["Content-Type"].startswith("text/javascript")

    config = json.loads(request(f"{shop_url}/config")[2])
    assert (config["publishableKey"], config["stripeJsUrl"]) == ("pk_test_123", "https://js.stripe.com/v3/")
    assert {product["sku"] for product in config["products"]} == {"MUG-BLUE", "TEA-EARL"}


def test_the_page_never_gets_the_secret_key(api) -> None:
    with pytest.raises(ValueError, match="publishable key"):
        Shop(api, publishable_key="sk_test_123")  # type: ignore[arg-type]
