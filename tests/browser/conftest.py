"""The checkout page in headless Chromium, against a local stack of its own: the example shop (web/merchant.py)
in front of template.yaml on moto, and the local Stripe with its stand-in Stripe.js.

Debian's chromium, driven by playwright (which cannot fetch a browser of its own here). Without one, every test
here is skipped, saying so. Each test's last screen is kept in .local/browser/<test>.png.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from local_runtime.checkout import local_merchant_api, serving_checkout
from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.scenarios import LOCAL_PARAMETERS, LOCAL_TIMING, seed_stack
from tests.conftest import ROOT
from web.merchant import ShopServer
from web.merchant_api import MerchantApi

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = ROOT / ".local" / "browser"
API_KEY = "sk_test_browser"
SIGNING_SECRET = "whsec_browser"
# The customer takes their time: the workflow must not time out while the browser types.
PARAMETERS = {**LOCAL_PARAMETERS, "PaymentTimeoutSeconds": "120"}


@dataclass
class Checkout:
    url: str
    stripe: FakeStripe
    merchant_api: MerchantApi

    def payment_intents_of(self, order_id: str) -> list[dict[str, Any]]:
        return [pi for pi in self.stripe.payment_intents.values() if pi["metadata"].get("order_id") == order_id]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM:
        pytest.skip("no Chromium (apt-get install chromium, or CHROMIUM=/path/to/chrome): browser tests not run")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport={"width": 800, "height": 720}
        )
        yield context
        context.close()


@pytest.fixture(scope="package")
def checkout(browser: Any) -> Iterator[Checkout]:
    server = ShopServer("127.0.0.1", 0)
    with (
        FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET) as stripe,
        LocalCloud(
            stripe_api_base=stripe.url,
            stripe_api_key=API_KEY,
            webhook_signing_secret=SIGNING_SECRET,
            parameters={**PARAMETERS, "CheckoutPageUrl": server.url},
            **LOCAL_TIMING,
        ) as cloud,
        serving_checkout(server, cloud, stripe),
    ):
        stripe.add_webhook_endpoint(cloud.url_of("/webhooks/stripe"))
        seed_stack(cloud, stripe)
        yield Checkout(server.url, stripe, local_merchant_api(cloud))


class Customer:
    """A customer at the checkout page, doing what a person does there."""

    def __init__(self, page: Any, url: str, name: str) -> None:
        from playwright.sync_api import expect

        self.page, self.url, self.name, self._expect = page, url, name, expect
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # the page polls through the shop's 404 until the workflow has accepted the order: not an error
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def check_out(self, email: str = "ada@shop.example") -> str:
        """Open the page, take the cart as it comes, go to payment; the order id the page is now for."""
        self.page.goto(self.url)
        self.page.get_by_label("E-mail for your receipt").fill(email)
        self.screenshot("cart")
        self.page.get_by_role("button", name="Continue to payment").click()
        self._expect(self.page.locator("#payment-element input[name=number]")).to_be_visible()
        return parse_qs(urlsplit(self.page.url).query)["orderId"][0]

    def pay_with(self, card_number: str) -> None:
        element = self.page.locator("#payment-element")
        element.locator("input[name=number]").fill(card_number)
        element.locator("input[name=expiry]").fill("12 / 34")
        element.locator("input[name=cvc]").fill("123")
        self.page.get_by_role("button", name="Pay").click()

    def open_order(self, order_id: str) -> None:
        """Follow a link to the page for an order (the e-mail's, or the shop's own)."""
        self.page.goto(f"{self.url}?{urlencode({'orderId': order_id})}")

    def answer_3d_secure(self, *, complete: bool) -> None:
        """Answer the bank's challenge, which Stripe.js shows in a modal over the page."""
        challenge = self.page.frame_locator("iframe[title='3D Secure']")
        self._expect(challenge.get_by_role("button", name="Complete")).to_be_visible()
        self.screenshot("3d-secure")
        challenge.get_by_role("button", name="Complete" if complete else "Fail").click()

    def answer_3d_secure_page(self, *, complete: bool) -> None:
        """Answer the bank's challenge on its own page, which sends the customer back to the checkout page."""
        self._expect(self.page.get_by_role("heading", name="3D Secure 2 Test Page")).to_be_visible()
        self.screenshot("3d-secure-page")
        self.page.get_by_role("button", name="Complete" if complete else "Fail").click()

    def sees(self, text: str) -> None:
        self._expect(self.page.locator("#message")).to_contain_text(text)

    def screenshot(self, step: str = "") -> None:
        self.page.screenshot(path=SCREENSHOTS / f"{self.name}{step and '-' + step}.png", full_page=True)


@pytest.fixture
def customer(browser: Any, checkout: Checkout, request: pytest.FixtureRequest) -> Iterator[Customer]:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    customer = Customer(page, checkout.url, request.node.name.removeprefix("test_"))
    yield customer
    customer.screenshot()
    page.close()
