"""The example checkout (web/merchant.py and its page) in front of a local stack: `make checkout`, the browser tests.

The shop is the very one a merchant runs against AWS; here it signs its merchant API calls with the local
credentials and hands the page the local Stripe's stand-in Stripe.js and publishable key.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.credentials import Credentials

from local_runtime.engine import FAKE_AWS_ENV, LocalCloud
from local_runtime.fake_stripe import FakeStripe
from web.merchant import Shop, ShopServer
from web.merchant_api import MerchantApi


def local_merchant_api(cloud: LocalCloud) -> MerchantApi:
    credentials = Credentials(FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"], FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    return MerchantApi(cloud.api_url, region=FAKE_AWS_ENV["AWS_REGION"], credentials=credentials)


@contextmanager
def serving_checkout(server: ShopServer, cloud: LocalCloud, stripe: FakeStripe) -> Iterator[ShopServer]:
    """Serve the shop on `server` (bound before the stack was made, so the stack's CheckoutPageUrl is its URL)."""
    server.shop = Shop(local_merchant_api(cloud), publishable_key=stripe.publishable_key,
                       stripe_js_url=f"{stripe.url}/v3/")  # fmt: skip
    server.serve_in_background()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
