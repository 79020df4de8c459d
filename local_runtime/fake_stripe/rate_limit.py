"""Stripe's basic rate limiter, when asked for (https://docs.stripe.com/rate-limits).

"Rate limits are measured in API requests per second, per Stripe account": 100 in live mode, 25 in a sandbox
(`FakeStripe(rate_limit_per_second=25)`). Beyond it Stripe answers 429 with a `rate_limit` error, which stripe-python
raises as `RateLimitError` and does not retry unless the response says `Stripe-Should-Retry: true`. Stripe
meters with token buckets (https://stripe.com/blog/rate-limiters): each account may burst a second's worth
of requests and earns tokens back at the rate, on the fake's clock.
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
    def __init__(self, requests_per_second: float, clock: Clock) -> None:
        self.requests_per_second, self._clock = requests_per_second, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # account -> (tokens, when counted)
        self._lock = threading.Lock()

    def admit(self, account: str) -> None:
        """Take a token from the account's bucket, or refuse the request with Stripe's 429."""
        now = self._clock.now()
        with self._lock:
            tokens, counted_at = self._buckets.get(account, (self.requests_per_second, now))
            tokens = min(self.requests_per_second, tokens + (now - counted_at) * self.requests_per_second)
            if tokens < 1:
                self._buckets[account] = (tokens, now)
                raise rate_limited()
            self._buckets[account] = (tokens - 1, now)
