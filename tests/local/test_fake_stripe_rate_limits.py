"""The fake's rate limiter, pinned to https://docs.stripe.com/rate-limits: off unless asked, then 429
`rate_limit` beyond the rate per account, measured on a stopped clock so that no test depends on its speed."""

import time
from collections.abc import Iterator

import pytest
import stripe

from local_runtime.fake_stripe import Clock, FakeStripe
from tests.local._support import client_of, create


@pytest.fixture
def limited() -> Iterator[FakeStripe]:
    with FakeStripe(rate_limit_per_second=25, clock=Clock(stopped_at=time.time())) as fake:
        yield fake


def use_up_a_second(client: stripe.StripeClient) -> None:
    for _ in range(25):
        client.v1.payment_intents.list()


def test_requests_beyond_the_rate_get_429(limited: FakeStripe) -> None:
    client = client_of(limited)
    use_up_a_second(client)
    with pytest.raises(stripe.RateLimitError) as exc:
        client.v1.payment_intents.list()
    error = exc.value.error
    assert (exc.value.http_status, error.type, error.code) == (429, "rate_limit_error", "rate_limit")
    assert len(limited.requests) == 26  # stripe-python does not retry a 429 on its own
    limited.clock.advance(1)
    use_up_a_second(client)


def test_requests_at_the_rate_are_never_refused(limited: FakeStripe) -> None:
    client = client_of(limited)
    for _ in range(100):
        limited.clock.advance(1 / 25)
        client.v1.payment_intents.list()
    assert {r.status for r in limited.requests} == {200}


def test_a_rate_limited_request_saves_nothing_for_its_key(limited: FakeStripe) -> None:
    client = client_of(limited)
    use_up_a_second(client)
    with pytest.raises(stripe.RateLimitError):
        create(client, "pm_card_visa", key="order-1")
    limited.clock.advance(1)
    pi = create(client, "pm_card_visa", key="order-1")
    assert pi.status == "succeeded" and "Idempotent-Replayed" not in pi.last_response.headers


def test_each_account_has_its_own_limit(limited: FakeStripe) -> None:
    client = client_of(limited)
    use_up_a_second(client)
    client.v1.payment_intents.list(options={"stripe_account": "acct_connected"})


def test_no_rate_limit_unless_asked() -> None:
    with FakeStripe(clock=Clock(stopped_at=time.time())) as fake:
        client = client_of(fake)
        for _ in range(100):
            client.v1.payment_intents.list()


def test_the_limit_can_be_turned_on_and_off_between_requests() -> None:
    with FakeStripe(clock=Clock(stopped_at=time.time())) as fake:
        client = client_of(fake)
        fake.limit_rate(25)
        use_up_a_second(client)
        with pytest.raises(stripe.RateLimitError):
            client.v1.payment_intents.list()
        fake.limit_rate(None)
        client.v1.payment_intents.list()
