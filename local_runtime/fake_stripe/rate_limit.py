"""Stripe's basic rate limiter, when asked for (https://docs.stripe.com/rate-limits).

"Rate limits are measured in API requests per second, per Stripe account": 100 in live mode, 25 in a sandbox
(`FakeStripe(rate_limit_per_second=25)`). "API endpoints have a default limit of 25 requests per second", and those
requests "also count against global limits"; each named operation is one endpoint (`POST /v1/payment_intents` and
`GET /v1/payment_intents/{id}` are two; the latter is one whatever the id): `endpoint_rate_limit_per_second=25`.
Beyond either Stripe answers 429 with a `rate_limit` error, which stripe-python raises as `RateLimitError` and does
not retry unless the response says `Stripe-Should-Retry: true`. Stripe meters with token buckets
(https://stripe.com/blog/rate-limiters): each account (and endpoint) may burst a second's worth of requests and
earns tokens back at the rate, on the fake's clock (wall time, plus what a test advanced). A refused request takes
no token.
"""

import threading

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import Rejected


def rate_limited() -> Rejected:
    return Rejected(
        429,
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
        type="rate_limit_error",
        code="rate_limit",
    )


class RateLimiter:
    def __init__(
        self, requests_per_second: float | None, clock: Clock, endpoint_requests_per_second: float | None = None
    ) -> None:
        self.requests_per_second, self._clock = requests_per_second, clock
        self.endpoint_requests_per_second = endpoint_requests_per_second
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}  # (account[, endpoint]) -> (tokens, when)
        self._lock = threading.Lock()

    def admit(self, account: str, endpoint: str = "") -> None:
        """Take a token from the account's bucket and the endpoint's, or refuse the request with Stripe's 429."""
        now = self._clock.now()
        limits = [((account,), self.requests_per_second), ((account, endpoint), self.endpoint_requests_per_second)]
        limits = [(key, rate) for key, rate in limits if rate]
        with self._lock:
            counted = {}
            for key, rate in limits:
                tokens, counted_at = self._buckets.get(key, (rate, now))
                counted[key] = min(rate, tokens + (now - counted_at) * rate)
            for key, tokens in counted.items():
                self._buckets[key] = (tokens, now)
            if any(tokens < 1 - 1e-6 for tokens in counted.values()):  # a refill at exactly the rate, rounded
                raise rate_limited()
            for key, tokens in counted.items():
                self._buckets[key] = (tokens - 1, now)
