"""The Stripe request budget every function shares (payments.pacing) and the 429s the gateway tells apart
(payments.stripe_gateway), against DynamoDB (moto) and the local Stripe over HTTP, stripe-python unmodified.

Stripe: 100 requests a second per account in live mode, 25 in a sandbox, 25 per endpoint; beyond, 429 `rate_limit`.
A 429 `lock_timeout` is another request holding the object (https://docs.stripe.com/rate-limits,
https://docs.stripe.com/error-codes/lock-timeout), which stripe-python retries itself when the answer says
`Stripe-Should-Retry: true` (stripe/_http_client.py `_should_retry`, stripe-python 16.1)."""

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local_runtime.fake_stripe import Clock, FakeStripe
from local_runtime.fake_stripe.rate_limit import RateLimiter
from payments.errors import StripeBusy, StripeUnavailable
from payments.orders import parse_order
from payments.pacing import MICROS, StripeBudget
from payments.stripe_gateway import StripeGateway
from tests.conftest import SAMPLE_CUSTOMER, sample_order
from tests.unit._support import APP_ID, client_error, unique

API_KEY = "sk_test_pacing"
TABLE = "StripeRateLimitTable"
T0 = 1_800_000_000.0
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeClock:
    """The functions' wall clock, stopped; sleeping moves it on (one caller at a time)."""

    def __init__(self) -> None:
        self.now, self.slept = T0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


class CountingWrites:
    def __init__(self, client: Any) -> None:
        self._client, self.writes = client, 0

    def update_item(self, **request: Any) -> Any:
        self.writes += 1
        return self._client.update_item(**request)


def next_slot(dynamodb: Any) -> float:
    item = dynamodb.get_item(TableName=TABLE, Key={"bucket": "stripe"}).get("Item") or {}
    return int(item.get("tat", 0)) / MICROS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def budget_of(dynamodb: Any, rate: float, clock: FakeClock) -> StripeBudget:
    return StripeBudget(dynamodb, TABLE, rate, clock=clock, sleep=clock.sleep)


# -- the token bucket


def test_a_seconds_worth_goes_at_once_then_one_request_per_interval(dynamodb, tables, clock) -> None:
    budget = budget_of(dynamodb, 10, clock)

    for _ in range(12):
        budget.take(max_wait=3)

    # A burst of a second's worth (10) waits for nothing; each request after it waits 1/10 s for its own slot
    assert clock.slept == [0.1, 0.1]


def test_a_request_costs_one_write_and_a_second_only_when_the_bucket_changed_since_its_function_looked(
    dynamodb, tables, clock
) -> None:
    counting, elsewhere = CountingWrites(dynamodb), CountingWrites(dynamodb)
    budget = budget_of(counting, 10, clock)  # type: ignore[arg-type]
    other = budget_of(elsewhere, 10, clock)  # type: ignore[arg-type]

    budget.take(max_wait=3)  # the happy path: no burst
    clock.now += 1
    budget.take(max_wait=3)
    budget.take(max_wait=3)  # a second request within the same 1/10 s: busy, as this function saw
    assert counting.writes == 3

    other.take(max_wait=3)  # another function, which last saw the bucket idle: it learns it is busy
    other.take(max_wait=3)
    assert elsewhere.writes == 3


def test_a_slot_further_off_than_the_caller_may_wait_is_not_booked(dynamodb, tables, clock) -> None:
    budget = budget_of(dynamodb, 1, clock)  # one a second, no burst
    budget.take(max_wait=0.5)
    booked = next_slot(dynamodb)

    with pytest.raises(StripeBusy, match="budget spent"):  # the state machine's Retry tries again later
        budget.take(max_wait=0.5)

    assert next_slot(dynamodb) == booked  # giving up pushed nobody else back
    assert clock.slept == []


def test_a_rate_limit_pauses_the_budget_for_every_function(dynamodb, tables, clock) -> None:
    budget, elsewhere = budget_of(dynamodb, 10, clock), budget_of(dynamodb, 10, clock)
    budget.take(max_wait=3)

    budget.pause(1.0)  # Stripe answered 429 rate_limit to this function

    elsewhere.take(max_wait=3)  # another function's next request waits the pause out
    assert clock.slept == [pytest.approx(1.0)]
    with pytest.raises(StripeBusy):
        elsewhere.take(max_wait=0.05)  # or goes back to its Retry if it may not wait that long


def test_the_budget_fails_open_when_dynamodb_cannot_be_asked(clock) -> None:
    class Throttled:
        def update_item(self, **request: Any) -> Any:
            raise client_error("ProvisionedThroughputExceededException", "UpdateItem")

    StripeBudget(Throttled(), TABLE, 10, clock=clock, sleep=clock.sleep).take(max_wait=3)  # goes, unpaced

    assert clock.slept == []


@pytest.mark.parametrize(("budget_rate", "stripe_rate"), [(20, 25), (80, 100)])
def test_what_the_budget_lets_through_never_exceeds_stripes_own_limiter(
    dynamodb, tables, budget_rate: int, stripe_rate: int
) -> None:
    # Given functions asking twice as fast as the budget, at random moments for 3 s, each waiting up to 3 s
    rng = random.Random(budget_rate)
    arrivals = sorted(T0 + rng.uniform(0, 3) for _ in range(2 * budget_rate * 3))
    granted = []
    for arrival in arrivals:
        waited: list[float] = []
        budget = StripeBudget(dynamodb, TABLE, budget_rate, clock=lambda a=arrival: a, sleep=waited.append)
        try:
            budget.take(max_wait=3)
        except StripeUnavailable:
            continue
        granted.append(arrival + sum(waited))

    # Then Stripe's token bucket (a second's worth, refilled at its rate: stripe.com/blog/rate-limiters, as the
    # local Stripe meters it) admits every request sent, and the budget was used, not just refused
    stripe_clock = Clock(stopped_at=T0)
    limiter = RateLimiter(stripe_rate, stripe_clock)
    for sent in sorted(granted):
        stripe_clock.advance(sent - stripe_clock.now())
        limiter.admit("acct")
    assert len(granted) >= budget_rate * 4  # a second's burst, then the rate until the last caller's bound


# -- 429s through stripe-python, against the local Stripe


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, async_settle_seconds=None) as server:
        server.add_customer(SAMPLE_CUSTOMER)
        yield server


def gateway(fake: FakeStripe, budget: StripeBudget | None = None, max_wait: float = 3.0) -> StripeGateway:
    return StripeGateway.connect(API_KEY, fake.url, 2, APP_ID, budget=budget, max_wait_seconds=max_wait)


def new_order():  # type: ignore[no-untyped-def]
    return parse_order(sample_order(orderId=unique("order")))


def creates_of(fake: FakeStripe, order_id: str) -> list[Any]:
    creates = (r for r in fake.requests if r.path == "/v1/payment_intents")
    return [r for r in creates if (r.idempotency_key or "").startswith(order_id)]


def intents_for(fake: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    return [pi for pi in fake.payment_intents.values() if pi["metadata"].get("order_id") == order_id]


def test_a_rate_limit_is_retried_after_pausing_the_budget_and_charges_once(fake, dynamodb, tables) -> None:
    order = new_order()
    fake.fail_next("POST", "/v1/payment_intents", status=429, times=2, match=lambda p, body: order.order_id in body)
    budget = StripeBudget(dynamodb, TABLE, 20)
    started = time.time()

    view = gateway(fake, budget).create_payment_intent(order, 1, "arn:exec")

    # Then the request went through with its one key; every function's next request waits out the pause
    assert view.status == "succeeded" and [pi["id"] for pi in intents_for(fake, order.order_id)] == [view.id]
    assert [r.status for r in creates_of(fake, order.order_id)] == [429, 429, 200]
    assert next_slot(dynamodb) > started + 1.0  # stripe-python does not retry a rate_limit itself: we paused


def test_a_lock_timeout_is_retried_soon_without_pausing_anyone(fake, dynamodb, tables) -> None:
    # Given another request holds the object for longer than stripe-python's own two retries
    order = new_order()
    fake.fail_next("POST", "/v1/payment_intents", status=429, should_retry=True, times=3,
                   match=lambda p, body: order.order_id in body)  # fmt: skip
    budget = StripeBudget(dynamodb, TABLE, 20)

    view = gateway(fake, budget).create_payment_intent(order, 1, "arn:exec")

    assert [r.status for r in creates_of(fake, order.order_id)] == [429, 429, 429, 200]
    assert [pi["id"] for pi in intents_for(fake, order.order_id)] == [view.id]
    assert next_slot(dynamodb) < time.time() + 1.0  # the budget was not paused: only this object was busy


def test_429s_beyond_the_bound_give_up_within_it_as_stripe_busy(fake) -> None:
    order = new_order()
    fault = fake.fail_next("POST", "/v1/payment_intents", status=429, times=1000,
                           match=lambda p, body: order.order_id in body)  # fmt: skip
    started = time.monotonic()

    with pytest.raises(StripeBusy, match="429 rate_limit"):  # the state machine waits its turn: never refunded
        gateway(fake, max_wait=1.0).create_payment_intent(order, 1, "arn:exec")

    fault.times = 0
    assert time.monotonic() - started < 1.5
    assert intents_for(fake, order.order_id) == []


def test_a_429_stripe_says_not_to_retry_goes_back_to_the_state_machine_at_once(fake) -> None:
    order = new_order()
    fake.fail_next("POST", "/v1/payment_intents", status=429, should_retry=False,
                   match=lambda p, body: order.order_id in body)  # fmt: skip

    with pytest.raises(StripeUnavailable):
        gateway(fake).create_payment_intent(order, 1, "arn:exec")

    assert len(creates_of(fake, order.order_id)) == 1


def test_every_request_stripe_receives_takes_a_token_stripe_pythons_own_retries_included(fake) -> None:
    class Tally:
        taken = 0

        def take(self, max_wait: float) -> None:
            assert 0 < max_wait <= 3.0
            Tally.taken += 1

    order = new_order()
    fake.fail_next("POST", "/v1/payment_intents", status=500, match=lambda p, body: order.order_id in body)

    gateway(fake, Tally()).create_payment_intent(order, 1, "arn:exec")  # type: ignore[arg-type]

    assert Tally.taken == len(creates_of(fake, order.order_id)) == 2


def test_a_budget_under_stripes_limit_earns_no_429(dynamodb, tables) -> None:
    # Given Stripe's own limiter at 10 requests a second, and a budget of 8
    with FakeStripe(api_key=API_KEY, rate_limit_per_second=10) as limited:
        limited.add_customer(SAMPLE_CUSTOMER)
        paced = gateway(limited, StripeBudget(dynamodb, TABLE, 8))
        created = paced.create_payment_intent(new_order(), 1, "arn:exec")

        for _ in range(20):  # three times what Stripe takes in a second, as fast as the budget lets them
            paced.retrieve(created.id)

    assert {r.status for r in limited.requests} == {200}
    assert len(limited.requests) == 21



def test_a_payment_the_budget_refuses_is_not_recorded_so_its_retry_creates_without_searching(
    fake, dynamodb, tables, clock
) -> None:
    # Given a budget of one request a second that another function has just spent, and an order to charge
    from payments import steps
    from payments.executions import ExecutionRef
    from payments.records import OrderRecords, PaymentRecords

    orders = OrderRecords(dynamodb, "OrdersTable", "InventoryTable")
    payments = PaymentRecords(dynamodb, "PaymentsTable")
    order = new_order()
    orders.claim(order, ExecutionRef("arn:exec", "2026-11-25T12:00:00.000Z"), NOW)
    budget = budget_of(dynamodb, 1, clock)
    budget.take(max_wait=0)
    paced = gateway(fake, budget, max_wait=0.5)

    # When CreatePaymentIntent runs: refused; then its Retry, a second later
    with pytest.raises(StripeBusy, match="budget spent"):
        steps.request_payment(order, 1, "arn:exec", stripe=paced, payments=payments, orders=orders, now=NOW)
    refused = orders.get(order.order_id)
    clock.now += 1.0
    requests_before = len(fake.requests)
    result = steps.request_payment(order, 1, "arn:exec", stripe=paced, payments=payments, orders=orders, now=NOW)

    # Then the refusal recorded no attempt, and the retry was one request (the create), not a list and a create
    assert "1" not in (refused.get("attempts") or {})
    assert [(r.method, r.path) for r in fake.requests[requests_before:]] == [("POST", "/v1/payment_intents")]
    assert result["status"] == "succeeded" and [pi["id"] for pi in intents_for(fake, order.order_id)] == [
        result["paymentIntentId"]
    ]
