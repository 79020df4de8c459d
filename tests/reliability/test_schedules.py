"""A handful of `make reliability`'s randomised schedules, and the ones that found bugs, in `make test`."""

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from unittest import mock

import pytest

from local_runtime.reliability import (
    DEFAULT_SEED,
    SCHEDULE_PARAMETERS,
    AwsFault,
    Schedule,
    StripeFault,
    Verdict,
    generate_schedules,
    local_stack,
    run_schedules,
    schedules,
)
from local_runtime.reliability.faults import BINDING_WRITE, EVENT_WRITE, UNTIL_THE_END
from local_runtime.reliability.schedules import written, written_out
from local_runtime.scenarios import DESTINATIONS

pytestmark = pytest.mark.e2e
SEEDED = generate_schedules(DEFAULT_SEED, 24, prefix="t")


def schedule(name: str, payment: str, delivery: str = "immediate", **changes: object) -> Schedule:
    """A schedule written out by hand: a regression of something a random one found."""
    return written(payment, order_id=f"t-regression-{name}", delivery=delivery, **changes)


REGRESSIONS = (
    # A Lambda that timed out (Lambda.Unknown) after Stripe charged: the execution died, the order stayed
    # unpaid-looking with the money taken. Fixed: idempotent steps retry Lambda.Unknown / Sandbox.Timedout.
    schedule("create-timed-out-after-charge", "card",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 1, True, "CreatePaymentIntent"),)),
    schedule("reconcile-timed-out", "3ds_abandoned",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 2, True, "ReconcileAfterTimeout"),)),
    # FulfilOrder committed, then kept failing past its Retry: the catch-all refunded a fulfilled order.
    # Fixed: RefundPayment claims the order first and refuses a fulfilled one (OrderAlreadyFulfilled).
    schedule("fulfilled-then-failed", "card",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 6, True, "FulfilOrder"),)),
    schedule("refund-timed-out-after-refunding", "out_of_stock",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 1, True, "RefundPayment"),)),
    # The races the harness stages on purpose.
    schedule("outcome-before-token", "card", "before_token", duplicates=2),
    schedule("pays-as-we-cancel", "3ds_pays_before_cancel", "reversed"),
    schedule("pays-at-reconcile", "3ds_pays_at_reconcile", "after_token"),
    schedule("charged-but-answer-lost", "card", "lost",
             stripe_faults=(StripeFault("create", 0, 1, after_commit=True, reset_connection=True),)),
    schedule("resume-throttled-then-lost", "sepa", "racing_token",
             aws_faults=(AwsFault("stepfunctions", "SendTaskSuccess", "ServiceUnavailable", 503, 1, True),)),
    # Lambda timeouts after the work was done, where no earlier schedule had one: the token writer past its
    # Retry (it parks, and registers a fresh token), a settle that timed out twice.
    schedule("token-stored-then-timed-out", "3ds_pass",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 6, True, "WaitForPaymentOutcome"),)),
    schedule("settled-then-timed-out", "declined",
             aws_faults=(AwsFault("lambda", "Invoke", "Sandbox.Timedout", 500, 2, True, "SettleFailedAttempt"),)),
    # Outages: a rolled API key past CreatePaymentIntent's Retry (it parks: six refusals, its first try and five
    # more, counted rather than timed so that a slow run parks too), FulfilOrder down past the parking
    # (NeedsAttention, then the reconciler fulfils the paid order).
    schedule("api-key-rejected-for-a-while", "card", stripe_faults=(StripeFault("create", 401, 6),)),
    schedule("fulfilment-down-past-the-parking", "card",
             aws_faults=(AwsFault("lambda", "Invoke", "ServiceException", 500, step="FulfilOrder",
                                  lasts=UNTIL_THE_END),)),
    # The same order started again: at once, and a day later (Stripe has forgotten its keys).
    schedule("started-twice-at-once", "card", second_start="concurrent"),
    schedule("started-again-the-next-day", "card", second_start="after_keys_forgotten"),
    # Stripe created the PaymentIntent but binding it to the attempt failed; a day passes before the retry, so the
    # same idempotency key would make a second one: the attempt's lookup must find the first.
    schedule("binding-lost-then-keys-pruned", "card", key_pruning="while_retrying",
             aws_faults=(AwsFault("dynamodb", "UpdateItem", "ThrottlingException", lasts=6.0,
                                  starts_at=BINDING_WRITE),)),
    # A refunded order's steps run again the next day, as a redrive would: no second refund, no second PaymentIntent.
    schedule("refunded-then-rerun-next-day", "out_of_stock", key_pruning="before_rerun"),
    # Stripe's other event destinations. The outcome handled before the task token is stored: from the bus (put,
    # read and handled by the StripeEvents function while RegisterTaskToken waits), and as a thin webhook.
    schedule("bus-outcome-before-token", "card", "before_token", duplicates=2, destination="eventbridge"),
    schedule("thin-outcome-before-token", "card", "before_token", duplicates=1, destination="webhook thin"),
    # A message whose event failed on its way in (its record refused for a moment: a transaction held the item, an
    # error botocore does not retry; the thin event's PaymentIntent not readable) is reported failed, comes again
    # after the visibility timeout, and is handled: the payment completes.
    schedule("bus-record-failed-comes-again", "card", "after_token", destination="eventbridge",
             aws_faults=(AwsFault("dynamodb", "UpdateItem", "TransactionConflictException", 400, only=EVENT_WRITE),)),
    schedule("bus-thin-fetch-failed-comes-again", "card", destination="eventbridge thin",
             stripe_faults=(StripeFault("retrieve", 500, 2, should_retry=False),)),
    # FakeStripe's own delivery to the bus, thin: every event type put, the rule keeping the PaymentIntent ones.
    schedule("stripe-puts-thin-on-the-bus", "3ds_pass", "stripe", destination="eventbridge thin"),
    # Newest first, copies, and all of it again after the end, from the bus.
    schedule("bus-reversed-copies-replayed", "sepa", "reversed", duplicates=2, replay_after_end=True,
             destination="eventbridge"),
    # A thin event fetched when Stripe has moved on: the customer pays as our cancel lands, events delayed.
    schedule("thin-paid-as-we-cancel-delayed", "3ds_pays_before_cancel", "delayed", max_delay=4.0,
             destination="webhook thin"),
    # Declined, and declined again on the checkout page: the last attempt settled, by the bus.
    schedule("bus-declined-twice", "declined", destination="eventbridge thin"),
)  # fmt: skip


Answered = dict[str, list[tuple[str, list[str]]]]  # order id -> (event type, answers), a delivery each


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[dict[str, Verdict], Answered]]:
    """The verdicts, and for each regression its deliveries, in order, with what the one path for Stripe's events
    answered each event delivered."""
    with local_stack(SCHEDULE_PARAMETERS) as stack:
        verdicts = {v.order_id: v for v in run_schedules(stack, [*SEEDED, *REGRESSIONS], concurrency=40)}
        answered: Answered = {}
        for case in REGRESSIONS:
            records = [r for r in stack.courier.records_of(case.order_id) if r.attempt > 0]
            answers = stack.answers_to({r.event_id for r in records})
            answered[case.order_id] = [(r.type, answers.get(r.event_id, [])) for r in records]
        yield verdicts, answered


@pytest.fixture(scope="module")
def verdicts(run: tuple[dict[str, Verdict], Answered]) -> dict[str, Verdict]:
    return run[0]


@pytest.fixture(scope="module")
def deliveries(run: tuple[dict[str, Verdict], Answered]) -> Answered:
    return run[1]


@pytest.mark.parametrize("case", SEEDED, ids=[f"{s.index}:{s.payment}:{s.delivery}" for s in SEEDED])
def test_seeded_schedule_holds_every_invariant(verdicts: dict[str, Verdict], case: Schedule) -> None:
    verdict = verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


@pytest.mark.parametrize("case", REGRESSIONS, ids=[s.order_id.removeprefix("t-regression-") for s in REGRESSIONS])
def test_regression_schedule_holds_every_invariant(verdicts: dict[str, Verdict], case: Schedule) -> None:
    verdict = verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


FAULTED = [case for case in REGRESSIONS if case.faults]


@pytest.mark.parametrize("case", FAULTED, ids=[case.order_id.removeprefix("t-regression-") for case in FAULTED])
def test_a_regressions_faults_fire(verdicts: dict[str, Verdict], case: Schedule) -> None:
    # A fault aimed at nothing (a step's payload the ASL no longer gives it) leaves a regression testing nothing
    assert verdicts[case.order_id].faults_fired > 0, case.describe()


def test_a_fulfilment_that_committed_is_never_refunded(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["t-regression-fulfilled-then-failed"]

    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")


def test_an_outage_past_the_parking_ends_needs_attention_and_the_reconciler_fulfils_the_paid_order(
    verdicts: dict[str, Verdict],
) -> None:
    verdict = verdicts["t-regression-fulfilment-down-past-the-parking"]

    assert (verdict.final_state, verdict.order_status) == ("NeedsAttention", "fulfilled")
    # by the reconciler on the execution's end, or (then it finds it settled) by the sweep running beside it
    ends = [step for step in verdict.path if step.startswith("[reconciler on the end of")]
    assert ends and any("fulfilled=1" in step or "settled=1" in step for step in ends), verdict.path


def test_an_outage_within_the_parking_parks_and_succeeds(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["t-regression-api-key-rejected-for-a-while"]

    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")
    assert "ParkCreatePaymentIntent" in verdict.path


@pytest.mark.parametrize("name", ["binding-lost-then-keys-pruned", "refunded-then-rerun-next-day",
                                  "started-again-the-next-day"])  # fmt: skip
def test_stripe_forgot_the_keys_during_the_schedule(verdicts: dict[str, Verdict], name: str) -> None:
    verdict = verdicts[f"t-regression-{name}"]

    assert "[a day passed at Stripe: every idempotency key forgotten]" in verdict.path
    assert verdict.stripe_truth == "1:succeeded"  # one PaymentIntent, whatever the forgotten keys


def test_every_schedule_draws_an_event_destination_and_the_seed_says_which() -> None:
    drawn = generate_schedules(DEFAULT_SEED, 200, prefix="t")

    assert {s.destination for s in drawn} == set(DESTINATIONS)
    assert [s.destination for s in drawn] == [s.destination for s in generate_schedules(DEFAULT_SEED, 200, prefix="t")]
    assert {s.destination for s in written_out(DEFAULT_SEED, 200)} == set(DESTINATIONS)


def test_destinations_are_drawn_apart_so_the_rest_of_a_schedule_is_what_the_seed_drew_before() -> None:
    # The draws of a seed before destinations: the same generator, each destination left at the default
    with mock.patch.object(schedules, "destinations", lambda seed, stream: FixedDraw()):
        before = generate_schedules(DEFAULT_SEED, 50, prefix="t")

    assert [replace(s, destination="webhook") for s in generate_schedules(DEFAULT_SEED, 50, prefix="t")] == before


class FixedDraw(random.Random):
    def choices(self, population: Any, weights: Any = None, **kwargs: Any) -> list[Any]:
        return ["webhook"]


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("bus-outcome-before-token", "payment_intent.succeeded"),
        ("thin-outcome-before-token", "v1.payment_intent.succeeded"),
    ],
)
def test_an_outcome_delivered_before_the_token_is_handled_before_it_is_stored(
    verdicts: dict[str, Verdict], deliveries: Answered, name: str, outcome: str
) -> None:
    verdict, (kind, answers) = verdicts[f"t-regression-{name}"], deliveries[f"t-regression-{name}"][0]

    # Recorded (no token yet), then RegisterTaskToken found the outcome: nothing waited for the timeout
    assert (verdict.final_state, kind, answers[0]) == ("PaymentSucceeded", outcome, "recorded")
    assert "ReconcileAfterTimeout" not in verdict.path


@pytest.mark.parametrize("name", ["bus-record-failed-comes-again", "bus-thin-fetch-failed-comes-again"])
def test_a_message_whose_event_failed_comes_again_and_resumes_the_payment(
    verdicts: dict[str, Verdict], name: str
) -> None:
    verdict = verdicts[f"t-regression-{name}"]

    assert verdict.deliveries["failed"] >= 1, (verdict.deliveries, verdict.path)
    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")


def test_stripes_own_delivery_puts_every_event_on_the_bus_and_the_rule_keeps_the_payment_intents(
    verdicts: dict[str, Verdict], deliveries: Answered
) -> None:
    name = "t-regression-stripe-puts-thin-on-the-bus"

    assert verdicts[name].final_state == "PaymentSucceeded"
    put = {kind for kind, _ in deliveries[name]}
    assert {"v1.payment_intent.requires_action", "v1.payment_intent.succeeded", "v1.charge.succeeded"} <= put
    assert 0 < verdicts[name].deliveries["put"] < len(deliveries[name])  # followed: what the rule routes


def test_declined_again_on_the_checkout_page_settles_the_last_attempt(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["t-regression-bus-declined-twice"]

    assert (verdict.final_state, verdict.order_status) == ("PaymentFailed", "failed")
    assert "SettleFailedAttempt" in verdict.path
