"""A local, in-memory fake of the slice of Stripe's HTTP API this project uses, both sides of a payment.

The merchant's side: the unmodified stripe-python client talks to it over real HTTP with the secret key::

    with FakeStripe(api_key="sk_test_local", publishable_key="pk_test_local") as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url},
                                     max_network_retries=2)
        pi = client.v1.payment_intents.create({"amount": 1000, "currency": "eur", ...})

The customer's side: the browser confirms with the publishable key and the PaymentIntent's client_secret,
either through the stand-in Stripe.js the fake serves at `fake.url + "/v3/"` (stripe_v3.js, Stripe.js's
signatures for the Payment Element) or, in scripts and tests, through `Browser`, which makes the same calls::

    Browser(fake.url, fake.publishable_key).pay(pi.client_secret, "4000002760003184", three_d_secure="complete")

It models PaymentIntents, PaymentMethods, Customers, charges, refunds and events with Stripe's object shapes, error
JSON and status codes; Stripe's test cards and test PaymentMethod ids (each use of an id such as `pm_card_visa`
mints a new PaymentMethod); single use of a PaymentMethod without a Customer; off-session `authentication_required`;
3-D Secure that only the customer's answer on the hosted test page moves on; manual capture (a card held in
`requires_capture`, captured, released or expiring at its `capture_before` on the movable clock; bank debits
refused); the publishable key's limits; idempotency (saved responses, 409 for a key in flight, keys forgotten after
24 h on a clock tests can move), list pagination and, when asked, rate limits. Each snapshot event has its thin
event (`v1.payment_intent.succeeded`, ..., served by GET /v2/core/events/{id}); a background thread delivers them to
every event destination, webhook endpoints (signed) and Amazon EventBridge (a PutEvents entry handed to the local
runtime), each in the payload it takes, with switches for delivery chaos (duplicates, reordering, delays, drops,
holds) and for API faults (500/429 or a TCP reset, before or after the commit). Each module names the Stripe
documentation it follows, and tests/local pins it there; README.md beside this file lists the API. Standard library
only.
"""

from local_runtime.fake_stripe.browser import Browser, Result
from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.delivery import Delivery
from local_runtime.fake_stripe.errors import ApiError, Rejected
from local_runtime.fake_stripe.eventbridge import DEFAULT_SOURCE, put_events_entry
from local_runtime.fake_stripe.fake import FakeStripe
from local_runtime.fake_stripe.faults import Fault
from local_runtime.fake_stripe.forms import MAX_AMOUNT, parse_form
from local_runtime.fake_stripe.objects import API_VERSION, new_id
from local_runtime.fake_stripe.sandbox import ERROR_MESSAGES, TEST_CARDS, TEST_PAYMENT_METHODS, TestPaymentMethod
from local_runtime.fake_stripe.server import RecordedRequest
from local_runtime.fake_stripe.thin_events import rfc3339
from local_runtime.fake_stripe.webhooks import WEBHOOK_USER_AGENT, sign_payload

__all__ = [
    "API_VERSION",
    "DEFAULT_SOURCE",
    "ERROR_MESSAGES",
    "MAX_AMOUNT",
    "TEST_CARDS",
    "TEST_PAYMENT_METHODS",
    "WEBHOOK_USER_AGENT",
    "ApiError",
    "Browser",
    "Clock",
    "Delivery",
    "FakeStripe",
    "Fault",
    "RecordedRequest",
    "Rejected",
    "Result",
    "TestPaymentMethod",
    "new_id",
    "parse_form",
    "put_events_entry",
    "rfc3339",
    "sign_payload",
]
