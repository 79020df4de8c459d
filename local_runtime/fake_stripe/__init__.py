"""A local, in-memory fake of the slice of Stripe's HTTP API this project uses.

The unmodified stripe-python client talks to it over real HTTP::

    with FakeStripe() as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url},
                                     max_network_retries=2)
        client.v1.payment_intents.create({"amount": 1000, "currency": "eur", ...})

It models PaymentIntents, charges, refunds and events with Stripe's object shapes, error JSON, status
codes, idempotency (saved responses, 409 for a key in flight, keys forgotten after 24 h on a clock tests
can move), list pagination and, when asked, rate limits; it delivers signed webhooks from a background
thread and offers switches for webhook chaos (duplicates, reordering, drops, holds) and API faults
(500/429 or a TCP reset, before or after the commit). Each module names the Stripe documentation it
follows, and tests/local pins it there. Standard library only.
"""

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError, Rejected
from local_runtime.fake_stripe.fake import FakeStripe
from local_runtime.fake_stripe.faults import Fault
from local_runtime.fake_stripe.forms import MAX_AMOUNT, parse_form
from local_runtime.fake_stripe.objects import API_VERSION, new_id
from local_runtime.fake_stripe.payment_methods import ERROR_MESSAGES, TEST_PAYMENT_METHODS, TestPaymentMethod
from local_runtime.fake_stripe.server import RecordedRequest
from local_runtime.fake_stripe.webhooks import WEBHOOK_USER_AGENT, Delivery, sign_payload

__all__ = [
    "API_VERSION",
    "ERROR_MESSAGES",
    "MAX_AMOUNT",
    "TEST_PAYMENT_METHODS",
    "WEBHOOK_USER_AGENT",
    "ApiError",
    "Clock",
    "Delivery",
    "FakeStripe",
    "Fault",
    "RecordedRequest",
    "Rejected",
    "TestPaymentMethod",
    "new_id",
    "parse_form",
    "sign_payload",
]
