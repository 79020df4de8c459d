"""A handful of `make reliability`'s randomised schedules, and the ones that found bugs, in `make test`."""

from collections.abc import Iterator
from dataclasses import replace

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

pytestmark = pytest.mark.e2e
SEEDED = generate_schedules(DEFAULT_SEED, 24, prefix="t")


def schedule(name: str, payment: str, delivery: str = "immediate", **changes: object) -> Schedule:
    """A schedule written out by hand: a regression of something a random one found."""
    base = Schedule(
        index=0, order_id=f"t-regression-{name}", payment=payment, delivery=delivery, duplicates=0, drop_rate=0.0,
        max_delay=0.0, replay_after_end=False, customer_delay=0.5, stripe_faults=(), aws_faults=(), seed=7,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


REGRESSIONS = (
    # A Lambda that timed out (Lambda.Unknown) after Stripe charged: the execution died, the order stayed
    # unpaid-looking with the money taken. Fixed: idempotent steps retry Lambda.Unknown / Sandbox.Timedout.
    schedule("create-timed-out-after-charge", "card",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 1, True, "CreatePaymentIntent"),)),
    schedule("reconcile-timed-out", "3ds_abandoned",
             aws_faults=(AwsFault("lambda", "Invoke", "Unknown", 500, 2, True, "SettleOrReconcile"),)),
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
