"""The peak run's bookkeeping (bench/peak.py) on hand-made orders: each order against its correct final state,
what counts as failed by a throttle, and the rate arithmetic."""

from collections import Counter

import pytest

from bench import peak
from bench.peak import Order

HOT, MUG = "HOT", "MUG"


def _order(n: int, state: str = "PaymentSucceeded", **changes: object) -> Order:
    order = Order(f"o{n}", (HOT, MUG), posted_at=100.0 + n, answer=202, started_at=100.2 + n, ended_at=110.0 + n,
                  final_state=state, order_status=peak.EXPECTED.get(state, "needs_attention"),
                  charges=1 if state == "PaymentSucceeded" else 0)  # fmt: skip
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def _judge(orders: list[Order], hot_stock: int, left: dict[str, int] | None = None) -> peak.Verdict:
    sold = sum(1 for o in orders if o.final_state == "PaymentSucceeded")
    left = left if left is not None else {HOT: hot_stock - sold, MUG: 100 - sold}
    return peak.judge(orders, {HOT: hot_stock, MUG: 100}, left, HOT, manual=True)


def test_every_order_in_its_correct_final_state_is_complete_and_nothing_is_wrong() -> None:
    # Given 8 orders for a hot SKU with 6 in stock: 6 paid, 2 out of stock and never charged (manual capture)
    orders = [_order(n) for n in range(6)] + [_order(n, "OutOfStock") for n in range(6, 8)]

    verdict = _judge(orders, hot_stock=6)

    assert verdict.ok and verdict.wrong == []
    assert (verdict.completed, verdict.failed_by_throttle, verdict.final_states) == (
        8, 0, Counter({"PaymentSucceeded": 6, "OutOfStock": 2}),
    )  # fmt: skip
    assert verdict.max_wait_s == pytest.approx(10.0)  # POST to the execution's end
    assert verdict.completed_per_s == pytest.approx(8 / (117.0 - 100.0))  # first POST (100) to last end (117)
    assert verdict.max_start_wait_s == pytest.approx(0.2)


def test_oversold_stock_a_second_charge_a_refund_or_a_record_that_disagrees_is_wrong() -> None:
    orders = [_order(n) for n in range(4)]
    orders[1].charges = 2
    orders[2].refunds = 1
    orders[3].order_status = "paid"

    verdict = _judge(orders, hot_stock=3, left={HOT: -1, MUG: 96})  # four sold of three

    assert not verdict.ok
    assert [why.split(":")[0] for why in verdict.wrong] == [
        "o1", "o2", "o3", "0 orders out of stock, 1 expected (3 HOT in stock)", HOT,
    ]  # fmt: skip


def test_a_throttle_that_keeps_an_order_from_its_end_and_a_refused_or_lost_post_count_as_failed_by_throttle() -> None:
    # Given one order parked until it needed attention for the Stripe budget, one whose POST was answered 503, one
    # never answered, one that parked and then completed, and one that failed for another reason
    orders = [
        _order(0, "NeedsAttention", errors=("StripeUnavailable: Stripe request budget spent for the next 3.0 s",)),
        _order(1, answer=503, started_at=None, ended_at=None, final_state="(none)", charges=0),
        _order(2, answer=None, started_at=None, ended_at=None, final_state="(none)", charges=0),
        _order(3, parked=True, errors=("StripeUnavailable: Stripe request budget spent",)),
        _order(4, "PaymentFailed", errors=("PaymentDeclined: card_declined",)),
    ]

    verdict = _judge(orders, hot_stock=10)

    assert verdict.failed_by_throttle == 3  # 0, 1, 2: parked and completed is not a failure
    assert verdict.parked == 1
    assert verdict.completed == 1
    assert [why.split(":")[0] for why in verdict.wrong] == ["o1", "o2", "o4"]  # o0 counts as failed by throttle


def test_the_offered_rate_is_over_the_posting_window_and_the_completed_rate_over_the_completions_middle() -> None:
    assert peak.offered_rate([0.0, 0.5, 1.0, 1.5, 2.0]) == pytest.approx(2.0)  # 4 intervals in 2 s
    assert peak.offered_rate([3.0]) == 0.0

    # 10 completions of orders posted from 0 s: a quick first one, then one a second, then a slow tail
    ended = [0.1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 30.0]
    assert peak.busy_period_rate([0.0, 0.5, 1.0], ended) == pytest.approx(10 / 30.0)  # first POST to last completion
    assert peak.busy_period_rate([0.0], []) == 0.0
    # the middle 80 % (for contrast only) is the 2nd to the 9th completion: 7 in 7 s
    assert peak.sustained_completion_rate(ended) == pytest.approx(7 / 7.0)
    assert peak.sustained_completion_rate([5.0]) == 0.0


def test_the_model_is_asked_for_the_runs_mix_and_the_ratio_is_flagged_beyond_a_quarter() -> None:
    verdict = _judge([_order(n) for n in range(3)], hot_stock=3)
    verdict.completed_per_s = 0.74
    run = peak.PeakRun(scale=0.15, predicted_per_s=1.0, binding="stripe.budget", verdict=verdict, window_s=10,
                       seconds=30, stripe_429=0, aws_throttled=Counter())  # fmt: skip

    assert run.ratio == pytest.approx(0.74) and not run.within_tolerance
    assert "MODEL_OFF_BY_MORE_THAN_25%" in run.line()
    assert run.fields().split() == [
        f"peak_offered_per_s={verdict.offered_per_s:.2f}", "peak_completed_per_s=0.74", "failed_by_throttle=0",
        "max_wait_s=10.0",
    ]  # fmt: skip
    verdict.completed_per_s = 0.8
    assert run.within_tolerance and "MODEL_OFF" not in run.line()


def test_the_section_names_the_model_the_measure_and_what_went_wrong() -> None:
    orders = [_order(n) for n in range(3)]
    orders[2].refunds = 1
    verdict = _judge(orders, hot_stock=3)
    run = peak.PeakRun(scale=0.15, predicted_per_s=1.0, binding="stripe.budget", verdict=verdict, window_s=10,
                       seconds=30, stripe_429=0, aws_throttled=Counter(), budget_per_payment=3.0,
                       stripe_requests=Counter({"POST /v1/payment_intents": 3}))  # fmt: skip

    text = peak.render(run)

    assert text.startswith(peak.BEGIN) and text.rstrip().endswith(peak.END)
    assert "(StripeRequestsPerSecond 3)" in text and "the stack's Stripe budget (StripeRequestsPerSecond), 3/s" in text
    assert "- o2: 1 refunds" in text and run.line() in text
