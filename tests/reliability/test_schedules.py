"""A handful of `make reliability`'s randomised schedules, and the ones that found bugs, in `make test`: under each
CaptureMethod, on a stack of its own."""

import random
from dataclasses import dataclass, replace
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
from local_runtime.reliability.settings import CAPTURE_METHODS
from local_runtime.scenarios import DESTINATIONS

pytestmark = pytest.mark.e2e
SEEDED = generate_schedules(DEFAULT_SEED, 24, prefix="t")
METHODS_OF: dict[str, tuple[str, ...]] = {}  # a regression's order id -> the capture methods it runs under


def schedule(
    name: str, payment: str, delivery: str = "immediate", *, methods: tuple[str, ...] = CAPTURE_METHODS,
    **changes: object,
) -> Schedule:  # fmt: skip
    """A schedule written out by hand: a regression of something a random one found, run under `methods`."""
    METHODS_OF[f"t-regression-{name}"] = methods
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
    schedule("refund-timed-out-after-refunding", "out_of_stock", methods=("automatic",),
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
    # Each CaptureMethod's own path: a card (manual: authorised, the stock reserved, then captured) and an order the
    # stock cannot fill (manual: the authorisation released, nothing charged; automatic: charged, then refunded).
    schedule("paid-by-card", "card"),
    schedule("out-of-stock", "out_of_stock"),
    # Authorise, reserve, capture under faults (manual): a capture whose answer was lost (retried, Stripe refuses a
    # second capture, the step reads the payment), a capture that timed out after capturing, ReserveStock timing out
    # after reserving past its Retry (it parks; the stock is taken once), the release down past the parking and the
    # capture down past it (NeedsAttention: the reconciler releases, or captures and fulfils), the webhooks lost (the
    # timeout finds the authorisation and goes on to ReserveStock).
    schedule("capture-answer-lost", "card", methods=("manual",),
             stripe_faults=(StripeFault("capture", 500, after_commit=True, should_retry=False),)),
    schedule("capture-timed-out-after-capturing", "card", methods=("manual",),
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 1, True, "CapturePayment"),)),
    schedule("reserved-then-timed-out-past-the-retry", "card", methods=("manual",),
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 6, True, "ReserveStock"),)),
    schedule("release-down-past-the-parking", "out_of_stock", methods=("manual",),
             aws_faults=(AwsFault("lambda", "Invoke", "ServiceException", 500, step="ReleaseAuthorization",
                                  lasts=UNTIL_THE_END),)),
    schedule("capture-down-past-the-parking", "card", methods=("manual",),
             stripe_faults=(StripeFault("capture", 500, should_retry=False, lasts=UNTIL_THE_END),)),
    schedule("authorised-webhooks-lost", "card", "lost", methods=("manual",)),
)  # fmt: skip


Answered = dict[str, list[tuple[str, list[str]]]]  # order id -> (event type, answers), a delivery each


@dataclass
class Run:
    """What one capture method's stack ran: the verdicts, and for each regression its deliveries, in order, with
    what the one path for Stripe's events answered each event delivered, and what Stripe holds of its money."""

    method: str
    verdicts: dict[str, Verdict]
    deliveries: Answered
    authorised: set[str]  # the orders whose card Stripe authorised to capture later
    refunded: dict[str, int]  # order id -> what Stripe refunded of it

    def verdict(self, name: str) -> Verdict:
        return self.verdicts[f"t-regression-{name}"]


def run_under(method: str) -> Run:
    regressions = [case for case in REGRESSIONS if method in METHODS_OF[case.order_id]]
    with local_stack(SCHEDULE_PARAMETERS[method]) as stack:
        verdicts = {v.order_id: v for v in run_schedules(stack, [*SEEDED, *regressions], concurrency=40)}
        answered: Answered = {}
        authorised, refunded = set(), {}
        for case in regressions:
            records = [r for r in stack.courier.records_of(case.order_id) if r.attempt > 0]
            answers = stack.answers_to({r.event_id for r in records})
            answered[case.order_id] = [(r.type, answers.get(r.event_id, [])) for r in records]
            pis = {pi["id"] for pi in stack.payment_intents(case.order_id)}
            if pis & stack.authorised():
                authorised.add(case.order_id)
            refunds = list(stack.stripe.refunds.values())
            refunded[case.order_id] = sum(int(r["amount"]) for r in refunds if r.get("payment_intent") in pis)
        return Run(method, verdicts, answered, authorised, refunded)


class Runs(dict[str, Run]):
    """Each capture method's schedules, run once (one stack at a time: moto's state is the process's)."""

    def __missing__(self, method: str) -> Run:
        self[method] = run_under(method)
        return self[method]


@pytest.fixture(scope="module")
def runs() -> Runs:
    return Runs()


def under_each_method(cases: tuple[Schedule, ...]) -> Any:
    """Parametrize a test over (capture method, case) for every case and method it runs under."""
    pairs = [(m, case) for m in CAPTURE_METHODS for case in cases if m in METHODS_OF.get(case.order_id, (m,))]
    return pytest.mark.parametrize(
        ("method", "case"), pairs, ids=[f"{m}:{c.order_id.removeprefix('t-regression-')}" for m, c in pairs]
    )


@pytest.mark.parametrize("method", CAPTURE_METHODS)
@pytest.mark.parametrize("case", SEEDED, ids=[f"{s.index}:{s.payment}:{s.delivery}" for s in SEEDED])
def test_seeded_schedule_holds_every_invariant(runs: Runs, method: str, case: Schedule) -> None:
    verdict = runs[method].verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


@under_each_method(REGRESSIONS)
def test_regression_schedule_holds_every_invariant(runs: Runs, method: str, case: Schedule) -> None:
    verdict = runs[method].verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


@under_each_method(tuple(case for case in REGRESSIONS if case.faults))
def test_a_regressions_faults_fire(runs: Runs, method: str, case: Schedule) -> None:
    # A fault aimed at nothing (a step's payload the ASL no longer gives it) leaves a regression testing nothing
    assert runs[method].verdicts[case.order_id].faults_fired > 0, case.describe()


@pytest.mark.parametrize("method", CAPTURE_METHODS)
def test_a_fulfilment_that_committed_is_never_refunded(runs: Runs, method: str) -> None:
    verdict = runs[method].verdict("fulfilled-then-failed")

    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")


@pytest.mark.parametrize("method", CAPTURE_METHODS)
def test_an_outage_past_the_parking_ends_needs_attention_and_the_reconciler_fulfils_the_paid_order(
    runs: Runs, method: str
) -> None:
    verdict = runs[method].verdict("fulfilment-down-past-the-parking")

    assert (verdict.final_state, verdict.order_status) == ("NeedsAttention", "fulfilled")
    # by the reconciler on the execution's end, or (then it finds it settled) by the sweep running beside it
    ends = [step for step in verdict.path if step.startswith("[reconciler on the end of")]
    assert ends and any("fulfilled=1" in step or "settled=1" in step for step in ends), verdict.path


@pytest.mark.parametrize("method", CAPTURE_METHODS)
def test_an_outage_within_the_parking_parks_and_succeeds(runs: Runs, method: str) -> None:
    verdict = runs[method].verdict("api-key-rejected-for-a-while")

    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")
    assert "ParkCreatePaymentIntent" in verdict.path


@pytest.mark.parametrize(
    ("method", "name", "stripe_truth"),
    [
        (method, name, "1:canceled" if (method, name) == ("manual", "refunded-then-rerun-next-day") else "1:succeeded")
        for method in CAPTURE_METHODS
        for name in ("binding-lost-then-keys-pruned", "refunded-then-rerun-next-day", "started-again-the-next-day")
    ],
)
def test_stripe_forgot_the_keys_during_the_schedule(runs: Runs, method: str, name: str, stripe_truth: str) -> None:
    verdict = runs[method].verdict(name)

    assert "[a day passed at Stripe: every idempotency key forgotten]" in verdict.path
    # One PaymentIntent, whatever the forgotten keys (out of stock under manual: its authorisation released)
    assert verdict.stripe_truth == stripe_truth


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


@pytest.mark.parametrize("method", CAPTURE_METHODS)
@pytest.mark.parametrize(("name", "prefix"), [("bus-outcome-before-token", ""), ("thin-outcome-before-token", "v1.")])
def test_an_outcome_delivered_before_the_token_is_handled_before_it_is_stored(
    runs: Runs, method: str, name: str, prefix: str
) -> None:
    run = runs[method]
    verdict, (kind, answers) = run.verdict(name), run.deliveries[f"t-regression-{name}"][0]
    # the outcome the execution waits for: the charge, or under manual the authorisation
    outcome = "payment_intent.amount_capturable_updated" if method == "manual" else "payment_intent.succeeded"

    # Recorded (no token yet), then RegisterTaskToken found the outcome: nothing waited for the timeout
    assert (verdict.final_state, kind, answers[0]) == ("PaymentSucceeded", prefix + outcome, "recorded")
    assert "ReconcileAfterTimeout" not in verdict.path


@pytest.mark.parametrize("method", CAPTURE_METHODS)
@pytest.mark.parametrize("name", ["bus-record-failed-comes-again", "bus-thin-fetch-failed-comes-again"])
def test_a_message_whose_event_failed_comes_again_and_resumes_the_payment(runs: Runs, method: str, name: str) -> None:
    verdict = runs[method].verdict(name)

    assert verdict.deliveries["failed"] >= 1, (verdict.deliveries, verdict.path)
    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")


@pytest.mark.parametrize("method", CAPTURE_METHODS)
def test_stripes_own_delivery_puts_every_event_on_the_bus_and_the_rule_keeps_the_payment_intents(
    runs: Runs, method: str
) -> None:
    run, name = runs[method], "t-regression-stripe-puts-thin-on-the-bus"

    assert run.verdicts[name].final_state == "PaymentSucceeded"
    put = {kind for kind, _ in run.deliveries[name]}
    assert {"v1.payment_intent.requires_action", "v1.payment_intent.succeeded", "v1.charge.succeeded"} <= put
    assert 0 < run.verdicts[name].deliveries["put"] < len(run.deliveries[name])  # followed: what the rule routes


@pytest.mark.parametrize("method", CAPTURE_METHODS)
def test_declined_again_on_the_checkout_page_settles_the_last_attempt(runs: Runs, method: str) -> None:
    verdict = runs[method].verdict("bus-declined-twice")

    assert (verdict.final_state, verdict.order_status) == ("PaymentFailed", "failed")
    assert "SettleFailedAttempt" in verdict.path


# -- what each capture method does (docs/capture.md) ------------------------------------------------------------


def test_under_manual_a_card_is_authorised_and_captured_only_after_its_stock_is_reserved(runs: Runs) -> None:
    run = runs["manual"]
    verdict = run.verdict("paid-by-card")

    assert (verdict.final_state, verdict.order_status, verdict.stripe_truth) == (
        "PaymentSucceeded", "fulfilled", "1:succeeded",
    )  # fmt: skip
    assert "t-regression-paid-by-card" in run.authorised
    steps = [step for step in verdict.path if step in ("ReserveStock", "CapturePayment", "FulfilOrder")]
    assert steps == ["ReserveStock", "CapturePayment", "FulfilOrder"]


def test_under_automatic_a_card_is_charged_at_once_and_nothing_is_held(runs: Runs) -> None:
    run = runs["automatic"]
    verdict = run.verdict("paid-by-card")

    assert (verdict.final_state, verdict.order_status, verdict.stripe_truth) == (
        "PaymentSucceeded", "fulfilled", "1:succeeded",
    )  # fmt: skip
    assert not run.authorised
    assert not {"ReserveStock", "CapturePayment"} & set(verdict.path)


@pytest.mark.parametrize(
    ("method", "end", "stripe_truth", "refunded"),
    [
        ("manual", ("OutOfStock", "out_of_stock"), "1:canceled", 0),  # released: nothing charged, nothing refunded
        ("automatic", ("Refunded", "refunded"), "1:succeeded", 1000),  # charged, then refunded in full (10.00)
    ],
)
def test_an_order_the_stock_cannot_fill_ends_as_its_capture_method_says(
    runs: Runs, method: str, end: tuple[str, str], stripe_truth: str, refunded: int
) -> None:
    run = runs[method]
    verdict = run.verdict("out-of-stock")

    assert (verdict.final_state, verdict.order_status) == end
    assert verdict.stripe_truth == stripe_truth
    assert run.refunded["t-regression-out-of-stock"] == refunded
    assert ("t-regression-out-of-stock" in run.authorised) == (method == "manual")


def test_a_capture_whose_answer_was_lost_or_that_timed_out_after_capturing_charged_once(runs: Runs) -> None:
    run = runs["manual"]
    for name in ("capture-answer-lost", "capture-timed-out-after-capturing"):
        verdict = run.verdict(name)

        assert (verdict.final_state, verdict.order_status, verdict.stripe_truth) == (
            "PaymentSucceeded", "fulfilled", "1:succeeded",
        ), name  # fmt: skip
        assert any(step.startswith("[TaskFailed") for step in verdict.path), verdict.path  # the fault did happen


def test_a_release_down_past_the_parking_is_left_to_the_reconciler_which_releases_the_hold(runs: Runs) -> None:
    verdict = runs["manual"].verdict("release-down-past-the-parking")

    assert verdict.final_state == "NeedsAttention"
    assert verdict.stripe_truth == "1:canceled"  # released (by the reconciler): no hold left, nothing charged
    assert not (verdict.held_authorisations or verdict.stranded_reservations), verdict.problems()
    assert runs["manual"].refunded["t-regression-release-down-past-the-parking"] == 0


def test_a_capture_down_past_the_parking_is_left_to_the_reconciler_which_captures_and_fulfils(runs: Runs) -> None:
    verdict = runs["manual"].verdict("capture-down-past-the-parking")

    assert (verdict.final_state, verdict.order_status, verdict.stripe_truth) == (
        "NeedsAttention", "fulfilled", "1:succeeded",
    )  # fmt: skip


def test_under_manual_a_timeout_that_finds_an_authorisation_goes_on_to_reserve_the_stock(runs: Runs) -> None:
    verdict = runs["manual"].verdict("authorised-webhooks-lost")

    assert (verdict.final_state, verdict.order_status) == ("PaymentSucceeded", "fulfilled")
    assert verdict.path.index("ReconcileAfterTimeout") < verdict.path.index("ReserveStock")
