"""Fixtures for the fake Stripe's tests: a webhook receiver, the fake delivering to it, and a client."""

from collections.abc import Iterator

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from tests.local._support import WebhookReceiver, client_of


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def fake(receiver: WebhookReceiver) -> Iterator[FakeStripe]:
    with FakeStripe(async_settle_seconds=0.2, webhook_retry_backoff=(0.05, 0.1, 0.2)) as f:
        f.add_webhook_endpoint(receiver.url)
        yield f


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return client_of(fake)
