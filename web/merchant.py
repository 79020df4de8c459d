"""The example merchant's backend for the checkout page: standard library, plus botocore to sign its calls.

    python -m web.merchant --api-url https://abc123.execute-api.eu-west-1.amazonaws.com \\
        --publishable-key pk_test_...

The options may come from the environment instead (MERCHANT_API_URL, STRIPE_PUBLISHABLE_KEY, STRIPE_JS_URL); the
region and the AWS credentials are botocore's default chain (AWS_REGION, AWS_PROFILE, the instance's or task's
role, ...), a principal allowed execute-api:Invoke on the stack's MerchantApiInvokeArn.

It serves the page (web/checkout.html, web/checkout.js) and three routes the page calls:

    GET  /config               {publishableKey, stripeJsUrl, currency, products}: which Stripe.js, what is for sale
    POST /checkout             {email, items: [{sku, quantity}]}: prices the cart, starts the payment (POST /payments)
    GET  /checkout/{orderId}   where the payment stands (GET /payments/{orderId}), with the client_secret while
                               the customer can pay

The browser never decides a price, never sees the merchant API or AWS credentials; the order id, random and
unguessable, is what lets a browser see its order's client_secret (it is in the page's URL and the e-mails).
A real shop would also tie the order to the customer's session.
"""

import argparse
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session

from web.merchant_api import MerchantApi, MerchantApiError

STRIPE_JS_URL = "https://js.stripe.com/v3/"
PAGE = Path(__file__).parent
STATIC = {
    "/": ("checkout.html", "text/html; charset=utf-8"),
    "/checkout.js": ("checkout.js", "text/javascript; charset=utf-8"),
}
ORDER_PATH = re.compile(r"/checkout/(?P<order_id>[A-Za-z0-9_-]{1,64})")
MAX_BODY = 16 * 1024
MAX_QUANTITY = 10


@dataclass(frozen=True)
class Product:
    name: str
    unit_amount: int  # in cents


CURRENCY = "usd"
# The shop's prices. The stack's Inventory table must hold a row per SKU (the local stack seeds these two).
PRODUCTS = {"MUG-BLUE": Product("Blue mug", 1000), "TEA-EARL": Product("Earl Grey tea", 500)}


class CartRefused(Exception):
    """A cart the shop will not start a payment for; the message is for the customer."""


class MerchantApiUnavailable(Exception):
    """The merchant API refused or did not answer: the shop's problem, not the customer's."""


def order_for(cart: Any) -> dict[str, Any]:
    """The order for a cart the browser sent: SKUs and quantities only; the prices are the shop's."""
    if not isinstance(cart, dict) or not isinstance(cart.get("items"), list):
        raise CartRefused("Send {email, items: [{sku, quantity}]}.")
    items = []
    for line in cart["items"]:
        product = PRODUCTS.get(line.get("sku")) if isinstance(line, dict) else None
        quantity = line.get("quantity") if isinstance(line, dict) else None
        if product is None:
            raise CartRefused("Your cart holds something we do not sell.")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
            raise CartRefused(f"Choose between 1 and {MAX_QUANTITY} of each product.")
        items.append({"sku": line["sku"], "quantity": quantity, "unitAmount": product.unit_amount})
    if not items or len({item["sku"] for item in items}) != len(items):
        raise CartRefused("Your cart is empty." if not items else "List each product once.")
    return {
        "orderId": f"order-{uuid.uuid4().hex}",
        "amount": sum(item["quantity"] * item["unitAmount"] for item in items),
        "currency": CURRENCY,
        "customer": {"email": cart.get("email")},
        "items": items,
    }


class Shop:
    """What the page asks of the merchant's backend, answered through the merchant API."""

    def __init__(self, api: MerchantApi, *, publishable_key: str, stripe_js_url: str = STRIPE_JS_URL) -> None:
        if not publishable_key.startswith("pk_"):
            raise ValueError("the page needs Stripe's publishable key (pk_...); never give it the secret key")
        self._api = api
        self._config = {
            "publishableKey": publishable_key,
            "stripeJsUrl": stripe_js_url,
            "currency": CURRENCY,
            "products": [{"sku": sku, "name": p.name, "unitAmount": p.unit_amount} for sku, p in PRODUCTS.items()],
        }

    def config(self) -> dict[str, Any]:
        return self._config

    def checkout(self, cart: Any) -> dict[str, Any]:
        """Start the payment of the cart; the order id, amount and currency of the order started."""
        order = order_for(cart)
        try:
            self._api.start_payment(order)
        except MerchantApiError as refused:
            field = (refused.body.get("error") or {}).get("field")
            if refused.status == 400 and field in ("customer", "customer.email"):  # the rest of the order is ours
                raise CartRefused("Enter a valid e-mail address.") from refused
            raise MerchantApiUnavailable(str(refused)) from refused
        except OSError as error:
            raise MerchantApiUnavailable(str(error)) from error
        return {key: order[key] for key in ("orderId", "amount", "currency")}

    def payment(self, order_id: str) -> dict[str, Any] | None:
        """What the page shows and needs; None until the payment workflow has accepted the order."""
        try:
            status = self._api.payment(order_id)
        except MerchantApiError as refused:
            if refused.status == 404:
                return None
            raise MerchantApiUnavailable(str(refused)) from refused
        except OSError as error:
            raise MerchantApiUnavailable(str(error)) from error
        payment = status.get("payment") or {}
        return {
            "orderId": status["orderId"],
            "status": status["status"],
            "amount": status["amount"],
            "currency": status["currency"],
            "attempt": status.get("attempt", 0),
            "lastFailure": status.get("lastFailure"),
            "paymentStatus": payment.get("status"),
            "clientSecret": payment.get("clientSecret"),
        }


class ShopServer(ThreadingHTTPServer):
    """The shop on HTTP. Bound at once (so that its URL is known, e.g. for the stack's CheckoutPageUrl);
    set `shop` before serving."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, shop: Shop | None = None) -> None:
        super().__init__((host, port), ShopRequests)
        self.shop = shop

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True, name="checkout-page")
        thread.start()
        return thread


class ShopRequests(BaseHTTPRequestHandler):
    server: ShopServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in STATIC:
            name, content_type = STATIC[path]
            return self._reply(200, (PAGE / name).read_bytes(), content_type)
        if path == "/config":
            return self._json(200, self._shop.config())
        if match := ORDER_PATH.fullmatch(path):
            return self._answer(lambda: self._shop.payment(match["order_id"]), ok=200)
        self._json(404, {"error": {"message": "Not found."}})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/checkout":
            return self._json(404, {"error": {"message": "Not found."}})
        if self.headers.get_content_type() != "application/json":
            return self._json(415, {"error": {"message": "Send the cart as application/json."}})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(413, {"error": {"message": "The cart is too large."}})
            cart = json.loads(self.rfile.read(length))
        except ValueError:
            return self._json(400, {"error": {"message": "Send the cart as JSON."}})
        self._answer(lambda: self._shop.checkout(cart), ok=201)

    @property
    def _shop(self) -> Shop:
        assert self.server.shop is not None, "ShopServer.shop is set before serving"
        return self.server.shop

    def _answer(self, work: Callable[[], dict[str, Any] | None], *, ok: int) -> None:
        try:
            body = work()
        except CartRefused as refused:
            return self._json(400, {"error": {"message": str(refused)}})
        except MerchantApiUnavailable as error:
            self.log_error("merchant API: %s", error)
            return self._json(502, {"error": {"message": "Payments are unavailable just now; try again shortly."}})
        if body is None:
            return self._json(404, {"error": {"message": "No such order yet."}})
        self._json(ok, body)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        # no-store: an order's answer may carry its client_secret
        self._reply(status, json.dumps(body).encode(), "application/json", {"Cache-Control": "no-store"})

    def _reply(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        # same-origin: a page Stripe returns to carries the client_secret in its URL until the page drops it
        headers = {"Content-Type": content_type, "X-Content-Type-Options": "nosniff",
                   "Referrer-Policy": "same-origin", **(headers or {})}  # fmt: skip
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page polls; only errors are worth a line

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"checkout: {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    env, session = os.environ.get, botocore.session.get_session()
    parser.add_argument("--api-url", default=env("MERCHANT_API_URL"), help="the stack's MerchantApiUrl output")
    parser.add_argument(
        "--region", default=env("AWS_REGION") or session.get_config_variable("region"), help="the stack's region"
    )
    parser.add_argument("--publishable-key", default=env("STRIPE_PUBLISHABLE_KEY"), help="pk_test_... or pk_live_...")
    parser.add_argument("--stripe-js-url", default=env("STRIPE_JS_URL", STRIPE_JS_URL), help="where Stripe.js is")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    for name in ("api_url", "region", "publishable_key"):
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required")
    if session.get_credentials() is None:
        parser.error("no AWS credentials: the default chain (environment, profile, instance role) found none")
    try:
        api = MerchantApi(args.api_url, region=args.region)
        shop = Shop(api, publishable_key=args.publishable_key, stripe_js_url=args.stripe_js_url)
    except ValueError as error:
        parser.error(str(error))
    server = ShopServer(args.host, args.port, shop)
    print(f"Checkout page: {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
