"""A handful of `make reliability`'s randomised schedules, and the ones that found bugs, in `make test`."""

from collections.abc import Iterator

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
)
from local_runtime.reliability.faults import BINDING_WRITE, UNTIL_THE_END
from local_runtime.reliability.schedules import written

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
    # Outages: a rolled API key past CreatePaymentIntent's Retry (it parks), FulfilOrder down past the parking
    # (NeedsAttention, then the reconciler fulfils the paid order).
    schedule("api-key-rejected-for-a-while", "card", stripe_faults=(StripeFault("create", 401, lasts=6.0),)),
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
)  # fmt: skip


@pytest.fixture(scope="module")
def verdicts() -> Iterator[dict[str, Verdict]]:
    with local_stack(SCHEDULE_PARAMETERS) as stack:
        yield {v.order_id: v for v in run_schedules(stack, [*SEEDED, *REGRESSIONS], concurrency=40)}


@pytest.mark.parametrize("case", SEEDED, ids=[f"{s.index}:{s.payment}:{s.delivery}" for s in SEEDED])
def test_seeded_schedule_holds_every_invariant(verdicts: dict[str, Verdict], case: Schedule) -> None:
    verdict = verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


@pytest.mark.parametrize("case", REGRESSIONS, ids=[s.order_id.removeprefix("t-regression-") for s in REGRESSIONS])
def test_regression_schedule_holds_every_invariant(verdicts: dict[str, Verdict], case: Schedule) -> None:
    verdict = verdicts[case.order_id]

    assert verdict.ok, "\n".join([case.describe(), *verdict.problems(), " > ".join(verdict.path)])


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
