"""The rate quotas that bound one deployment, as documented (us-east-1), and the local runtime's enforcement of them.

`DOCUMENTED` lists each quota with its default and the page it was read from; bench/capacity.py divides
them by what one payment uses. `Quotas` is what the local runtime enforces, off unless asked:

    quotas = Quotas.scaled(0.1)  # every rate and bucket a tenth of AWS's and Stripe's defaults
    with FakeStripe(**quotas.stripe_limits()) as stripe, LocalCloud(..., quotas=quotas) as cloud:
        ...  # and the stack's own Stripe budget scaled alike: parameters={..., **quotas.parameters()}

Beyond its bucket, StartExecution and SendTaskSuccess answer as Step Functions does (400
`ThrottlingException`, the Step Functions API reference's common errors); a write to one DynamoDB item
beyond the per-partition rate answers as an on-demand table does (400
`ProvisionedThroughputExceededException` with the reason `TableWriteKeyRangeThroughputExceeded`; inside
TransactWriteItems, `TransactionCanceledException` with a `ThrottlingError` cancellation reason); the
local Stripe answers 429 `rate_limit` (fake_stripe/rate_limit.py). A throttled request consumes nothing.
Every bucket runs on wall time (`time.monotonic`), never on the local Stripe's movable clock or on how
fast moto's interpreter runs (`_fast_interpreter` makes it cheaper, not faster in time).
"""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

EPSILON = 1e-6  # so that requests exactly at the rate are not refused for a rounding error

STEP_FUNCTIONS_QUOTAS = "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html"
STRIPE_RATE_LIMITS = "https://docs.stripe.com/rate-limits"
STRIPE_BUDGET = "template.yaml `StripeRequestsPerSecond`; docs/peak-load.md, Stripe pacing"


@dataclass(frozen=True)
class Quota:
    rate: float  # per second; for concurrency, executions at once
    burst: float | None  # token bucket size, where documented
    unit: str
    quoted: str  # as the page states it
    source: str


# Default quotas in us-east-1 (Stripe: live mode). Keys are the capacity model's (bench/capacity.py).
DOCUMENTED: dict[str, Quota] = {
    "stripe.global": Quota(
        100, None, "Stripe API requests/s per account",
        "Global API rate limit: live mode 100 requests per second (sandbox 25)", STRIPE_RATE_LIMITS,
    ),
    "stripe.endpoint": Quota(
        25, None, "Stripe API requests/s per endpoint",
        "API endpoints have a default limit of 25 requests per second (each named operation, e.g. "
        "GET /v1/payment_intents/{id}, is one endpoint whatever the id); they also count against the global limit",
        STRIPE_RATE_LIMITS,
    ),
    # Not Stripe's limit but the stack's own: every function's Stripe requests share one token bucket (template
    # parameter StripeRequestsPerSecond, payments.pacing.StripeBudget); a request beyond it waits or is retried.
    "stripe.budget": Quota(
        20, None, "Stripe requests/s this stack sends (its own budget)",
        "StripeRequestsPerSecond, default 20: under a sandbox's 25 and the per-endpoint 25, a fifth of a sandbox and "
        "four fifths of a live account left to the merchant's other systems",
        STRIPE_BUDGET,
    ),
    "sfn.StartExecution": Quota(
        300, 1300, "StartExecution/s per account",
        "StartExecution, Standard, in US East (N. Virginia): bucket size 1,300, refill rate 300 per second",
        STEP_FUNCTIONS_QUOTAS,
    ),
    "sfn.SendTaskSuccess": Quota(
        500, 3000, "SendTaskSuccess/s per account",
        "SendTaskSuccess, in US East (N. Virginia): bucket size 3,000, refill rate 500 per second",
        STEP_FUNCTIONS_QUOTAS,
    ),
    "sfn.StateTransition": Quota(
        1500, 5000, "state transitions/s per account (Standard)",
        "StateTransition, Standard, in US East (N. Virginia): bucket size 5,000, refill rate 1,500 per second "
        "(new accounts start lower, raised with use)",
        STEP_FUNCTIONS_QUOTAS,
    ),
    "lambda.concurrency": Quota(
        1000, None, "concurrent Lambda executions per account",
        "Concurrent executions: 1,000 (new accounts start lower); each function scales by 1,000 execution "
        "environments every 10 seconds",
        "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, "
        "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html",
    ),
    "dynamodb.partition_writes": Quota(
        1000, None, "write units/s on one partition (one item: all writes to a key)",
        "each individual partition is limited to 1,000 write units per second and 3,000 read units per second "
        "(a transactional write of an item up to 1 KB is 2 write units)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
    ),
    "dynamodb.table_writes": Quota(
        40000, None, "write request units/s per on-demand table",
        "per-table account-level quota: 40,000 write request units (and 40,000 read) per table",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottlingOnDemand.html",
    ),
    "apigateway.requests": Quota(
        10000, 5000, "HTTP API requests/s per account",
        "Throttle quota per account, per Region across HTTP APIs, REST APIs, ...: 10,000 requests per second "
        "with a maximum bucket capacity of 5,000 requests",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
    ),
}  # fmt: skip


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second of wall time; a request takes `cost` tokens or none."""

    def __init__(self, rate: float, burst: float, now: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._now = rate, burst, now
        self._tokens, self._at = burst, now()

    def _refill(self) -> float:
        now = self._now()
        self._tokens, self._at = min(self.burst, self._tokens + (now - self._at) * self.rate), now
        return self._tokens


def take_all(wanted: Iterable[tuple[TokenBucket, float]], lock: threading.Lock) -> bool:
    """Take from every bucket, or from none when one of them is short (a throttled request consumes nothing)."""
    wanted = list(wanted)
    with lock:
        if any(bucket._refill() < cost - EPSILON for bucket, cost in wanted):
            return False
        for bucket, cost in wanted:
            bucket._tokens -= cost
        return True


@dataclass(frozen=True)
class Quotas:
    """The quotas the local runtime enforces: each rate (and bucket) the documented default times `scale`."""

    scale: float = 1.0
    stripe_per_second: float = DOCUMENTED["stripe.global"].rate
    stripe_endpoint_per_second: float = DOCUMENTED["stripe.endpoint"].rate
    stripe_budget_per_second: float = DOCUMENTED["stripe.budget"].rate  # the stack's StripeRequestsPerSecond
    start_execution: tuple[float, float] = (DOCUMENTED["sfn.StartExecution"].rate, 1300)  # refill/s, bucket size
    send_task_success: tuple[float, float] = (DOCUMENTED["sfn.SendTaskSuccess"].rate, 3000)  # as DOCUMENTED has them
    partition_write_units: float = DOCUMENTED["dynamodb.partition_writes"].rate  # per second; bucket: one second's

    @classmethod
    def scaled(cls, scale: float) -> "Quotas":
        if scale <= 0:
            raise ValueError("the scale must be positive")
        base = cls()
        return replace(
            base,
            scale=scale,
            stripe_per_second=base.stripe_per_second * scale,
            stripe_endpoint_per_second=base.stripe_endpoint_per_second * scale,
            stripe_budget_per_second=base.stripe_budget_per_second * scale,
            start_execution=(base.start_execution[0] * scale, base.start_execution[1] * scale),
            send_task_success=(base.send_task_success[0] * scale, base.send_task_success[1] * scale),
            partition_write_units=base.partition_write_units * scale,
        )

    def stripe_limits(self) -> dict[str, float]:
        """FakeStripe's keyword arguments for Stripe's rate limits at this scale."""
        return {
            "rate_limit_per_second": self.stripe_per_second,
            "endpoint_rate_limit_per_second": self.stripe_endpoint_per_second,
        }

    def parameters(self) -> dict[str, str]:
        """The template parameters that go with these quotas: the stack's Stripe budget, scaled alike (a local stack
        otherwise runs a budget of 1,000 that never binds, `LOCAL_PARAMETERS`)."""
        return {"StripeRequestsPerSecond": f"{self.stripe_budget_per_second:g}"}

    def model_limits(self) -> dict[str, float]:
        """The sustained rates the capacity model divides by (bench/capacity.py `sustained_rate`)."""
        return {
            "stripe.global": self.stripe_per_second,
            "stripe.endpoint": self.stripe_endpoint_per_second,
            "stripe.budget": self.stripe_budget_per_second,
            "sfn.StartExecution": self.start_execution[0],
            "sfn.SendTaskSuccess": self.send_task_success[0],
            "dynamodb.partition_writes": self.partition_write_units,
        }


@dataclass
class Throttle:
    """The AWS side of `Quotas`, applied by AwsTraffic to each request before moto sees it."""

    quotas: Quotas
    hash_keys: dict[str, str]  # table name -> its partition key attribute
    now: Callable[[], float] = time.monotonic
    _buckets: dict[object, TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _bucket(self, name: object, rate: float, burst: float) -> TokenBucket:
        with self._lock:
            if name not in self._buckets:
                self._buckets[name] = TokenBucket(rate, burst, self.now)
            return self._buckets[name]

    def admit_step_functions(self, action: str) -> bool:
        limits = {"StartExecution": self.quotas.start_execution, "SendTaskSuccess": self.quotas.send_task_success}
        if action not in limits:
            return True
        rate, burst = limits[action]
        return take_all([(self._bucket(action, rate, burst), 1)], self._lock)

    def throttled_items(self, writes: list[tuple[str, dict[str, object]] | None], units: float) -> list[bool]:
        """For each written item ((table, key or item), or None for no write), whether its partition refuses
        the write; when none refuses, their write units are taken. Each item is charged `units`: 1 for a
        write, 2 for a transactional one (items here are under 1 KB)."""
        rate = self.quotas.partition_write_units
        buckets: list[TokenBucket | None] = []
        for write in writes:
            table, item = write if write else (None, {})
            attribute = self.hash_keys.get(table or "")
            if attribute is None or attribute not in item:
                buckets.append(None)
                continue
            buckets.append(self._bucket(("partition", table, repr(item[attribute])), rate, rate))
        with self._lock:
            short = [b is not None and b._refill() < units - EPSILON for b in buckets]
            if not any(short):
                for bucket in buckets:
                    if bucket is not None:
                        bucket._tokens -= units
        return short
