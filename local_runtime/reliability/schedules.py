"""Schedules: one order each, what its customer pays with and does, Stripe's event destination and how it delivers
the order's events there, its faults, a second start of the order, a day passing at Stripe.

The tables here (and `faults.STRIPE_FAULTS`, `faults.AWS_FAULTS`, `faults.OUTAGES`) are what a seed draws from, in
their order: an entry added, removed or reweighted changes the schedules of every seed (see the package docstring).
`written_out` adds the same schedules to every seed: a Lambda timeout at every step, outages at every step that
parks, duplicate starts, key pruning.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from local_runtime import scenarios
from local_runtime.reliability.faults import (
    AWS_FAULTS,
    BINDING_WRITE,
    LAMBDA_STEPS,
    OUTAGES,
    PARKING_STEPS,
    STRIPE_FAULTS,
    UNTIL_THE_END,
    AwsFault,
    Fault,
    StripeFault,
)
from local_runtime.reliability.settings import CUSTOMER


@dataclass(frozen=True)
class Payment:
    """What the customer pays with, and what the customer does."""

    method: str | None
    customer: str | None = None  # 3ds_pass | 3ds_fail | pay_at_reconcile | pay_before_cancel | bank_settles
    items: tuple[tuple[str, int], ...] = (("MUG-BLUE", 2), ("TEA-EARL", 1))
    # After a decline, the customer pays the same PaymentIntent again on the checkout page: with a card that is
    # declined too ("declined") or one that pays ("card"); None: the customer leaves (the timeout ends the order).
    again: str | None = None

    @property
    def acts_on_the_page(self) -> bool:
        """The customer acts on the checkout page (3-D Secure, another card after a decline) at a moment of their
        own: it may be the moment our cancel of the unpaid PaymentIntent lands."""
        return self.customer in ("3ds_pass", "3ds_fail", "pay_at_reconcile", "pay_before_cancel") or bool(self.again)


PAYMENTS = {
    "card": Payment("pm_card_visa"),
    "declined": Payment("pm_card_chargeDeclined", again="declined"),
    "insufficient_funds": Payment("pm_card_chargeDeclinedInsufficientFunds", again="card"),
    "3ds_pass": Payment("pm_card_authenticationRequired", "3ds_pass"),
    "3ds_fail": Payment("pm_card_authenticationRequired", "3ds_fail"),
    "3ds_abandoned": Payment("pm_card_authenticationRequired"),
    "3ds_pays_at_reconcile": Payment("pm_card_authenticationRequired", "pay_at_reconcile"),
    "3ds_pays_before_cancel": Payment("pm_card_authenticationRequired", "pay_before_cancel"),
    "sepa": Payment("pm_success_de"),
    "sepa_failed": Payment("pm_failed_de"),
    "sepa_slow": Payment("pm_successDelayed_de"),
    "ach_settles_late": Payment("pm_usBankAccount_processing", "bank_settles"),
    "no_payment_method": Payment(None),
    "out_of_stock": Payment("pm_card_visa", items=(("LAST-ONE", 1),)),
}
PAYMENT_WEIGHTS = {  # one for each of PAYMENTS
    "card": 18,
    "declined": 7,
    "insufficient_funds": 7,
    "3ds_pass": 12,
    "3ds_fail": 5,
    "3ds_abandoned": 4,
    "3ds_pays_at_reconcile": 4,
    "3ds_pays_before_cancel": 4,
    "sepa": 8,
    "sepa_failed": 6,
    "sepa_slow": 3,
    "ach_settles_late": 5,
    "no_payment_method": 4,
    "out_of_stock": 6,
}
DELIVERY_WEIGHTS = {  # one for each mode `courier.Plan` knows
    "stripe": 12,
    "immediate": 14,
    "before_token": 14,
    "racing_token": 10,
    "after_token": 10,
    "delayed": 15,
    "reversed": 9,
    "lost": 8,
    "lossy": 8,
}
# Stripe's event destination for the order (the stack takes both ways in): a webhook endpoint or the Amazon
# EventBridge partner event source, each with snapshot or thin events. Drawn from a stream of its own (see
# `destinations`), so that adding it left every other draw of a seed as it was.
DESTINATION_WEIGHTS = {destination: 1 for destination in scenarios.DESTINATIONS}
OUTAGE_RATE = 0.12  # the share of schedules with an outage (one at most: a second could exhaust the parking)
SECOND_START_WEIGHTS = {  # the same order started again under another name
    "": 87.5,
    "concurrent": 6,  # at the same moment as the first
    "after_end": 6,  # once the first has ended and been reconciled
    "after_keys_forgotten": 0.5,  # ... and a day later, when Stripe has forgotten the order's idempotency keys
}
KEY_PRUNING_WEIGHTS = {  # Stripe's clock moves 25 h, and it forgets every idempotency key
    "": 396,
    "while_retrying": 2,  # once a step has failed (the order's outage fails one): before its Retry, or parked
    "before_rerun": 2,  # after the execution ended; then its steps run again as a redrive would run them
}


@dataclass(frozen=True)
class Schedule:
    index: int
    order_id: str
    payment: str
    delivery: str
    duplicates: int
    drop_rate: float
    max_delay: float
    replay_after_end: bool
    customer_delay: float  # seconds before the customer (or the bank) acts
    stripe_faults: tuple[StripeFault, ...]
    aws_faults: tuple[AwsFault, ...]
    seed: int
    second_start: str = ""  # a mode of SECOND_START_WEIGHTS
    key_pruning: str = ""  # a mode of KEY_PRUNING_WEIGHTS
    destination: str = "webhook"  # one of DESTINATION_WEIGHTS

    @property
    def faults(self) -> tuple[Fault, ...]:
        return (*self.stripe_faults, *self.aws_faults)

    @property
    def moves_stripes_clock(self) -> bool:
        """Stripe's clock is one for every order: such a schedule runs alone."""
        return bool(self.key_pruning) or self.second_start == "after_keys_forgotten"

    def describe(self) -> str:
        parts = [self.payment, f"by {self.destination}", f"delivery={self.delivery}"]
        if self.duplicates:
            parts.append(f"+{self.duplicates} copies")
        if self.delivery == "delayed":
            parts.append(f"<= {self.max_delay:.1f}s late")
        if self.delivery == "lossy":
            parts.append(f"{self.drop_rate:.0%} dropped")
        if self.replay_after_end:
            parts.append("replayed after the end")
        payment = PAYMENTS[self.payment]
        if payment.customer in ("3ds_pass", "3ds_fail", "bank_settles") or payment.again:
            parts.append(f"customer/bank after {self.customer_delay:.1f}s")
        parts += [f.describe() for f in self.faults]
        if self.second_start:
            parts.append(f"started again {self.second_start.replace('_', ' ')}")
        if self.key_pruning:
            parts.append(f"keys pruned {self.key_pruning.replace('_', ' ')}")
        return ", ".join(parts)


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def destinations(seed: int, stream: str) -> random.Random:
    """The draws of destinations, apart from the seed's other draws: a seed's schedules are the ones it drew before
    destinations were drawn, each now with a destination."""
    return random.Random(f"{stream} destinations {seed}")


def order_prefix(prefix: str, seed: int) -> str:
    """The start of a seed's order ids, of fixed width: no order id is a substring of another."""
    return f"{prefix}-{seed % 100000:05d}"


def generate_schedules(seed: int, count: int, *, prefix: str = "rel") -> list[Schedule]:
    """`count` schedules, the same for the same seed. Order ids are unique per seed and never a
    substring of one another (fixed width), so a fault can be aimed at one order's requests."""
    rng, destination_rng = random.Random(seed), destinations(seed, "drawn")
    schedules = []
    for index in range(count):
        payment = pick(rng, PAYMENT_WEIGHTS)
        delivery = pick(rng, DELIVERY_WEIGHTS)
        stripe_faults = tuple(rng.choice(STRIPE_FAULTS)(rng) for _ in range(rng.choice((0, 0, 0, 1, 1, 2))))
        aws_faults = tuple(rng.choice(AWS_FAULTS)(rng) for _ in range(rng.choice((0, 0, 0, 1, 1, 2))))
        key_pruning = pick(rng, KEY_PRUNING_WEIGHTS)
        outage = rng.choice(OUTAGES)(rng) if rng.random() < OUTAGE_RATE or key_pruning == "while_retrying" else None
        if isinstance(outage, StripeFault):
            stripe_faults += (outage,)
        elif outage is not None:
            aws_faults += (outage,)
        schedules.append(
            Schedule(
                index=index,
                order_id=f"{order_prefix(prefix, seed)}-{index:05d}x",
                payment=payment,
                delivery=delivery,
                duplicates=rng.choice((0, 0, 0, 1, 1, 2, 3)),
                drop_rate=rng.choice((0.3, 0.5, 0.7)) if delivery == "lossy" else 0.0,
                max_delay=rng.uniform(0.5, 5.0) if delivery == "delayed" else 0.0,
                replay_after_end=rng.random() < 0.25,
                customer_delay=rng.choice((0.0, 0.2, 0.5, 1.0, 2.0, 2.9, 3.1, 4.0, 6.0)),
                stripe_faults=stripe_faults,
                aws_faults=aws_faults,
                seed=rng.getrandbits(32),
                second_start=pick(rng, SECOND_START_WEIGHTS),
                key_pruning=key_pruning,
                destination=pick(destination_rng, DESTINATION_WEIGHTS),
            )
        )
    return schedules


# A payment that reaches each Lambda step.
# A payment that reaches each step that invokes a function (`faults.LAMBDA_STEPS`), under CaptureMethod manual for
# ReserveStock, CapturePayment, ReleaseAuthorization and NotifyOutOfStock, under automatic for RefundPayment and
# NotifyRefunded (a fault aimed at a step the method does not reach fires at nothing); None: no schedule reaches it
# (an off-session retry needs a saved card; a lapsed authorisation, Stripe's clock a week on).
REACHES = {
    "AcceptOrder": "card", "CreatePaymentIntent": "card", "WaitForPaymentOutcome": "3ds_pass",
    "SettleFailedAttempt": "declined", "NotifyRetry": "insufficient_funds", "RetryOffSession": None,
    "NotifyFailed": "declined", "ReconcileAfterTimeout": "3ds_abandoned", "NotifyTimedOut": "3ds_abandoned",
    "ReserveStock": "card", "CapturePayment": "card", "ReleaseAuthorization": "out_of_stock",
    "NotifyOutOfStock": "out_of_stock", "NotifyAuthorizationExpired": None, "FulfilOrder": "card",
    "RefundPayment": "out_of_stock", "NotifyRefunded": "out_of_stock", "SendReceipt": "card",
}  # fmt: skip


def written(payment: str, **changes: Any) -> Schedule:
    """A schedule written out by hand: delivered by webhook as Stripe emits, no copies, the customer acting after
    0.5 s. (`written_out` gives each a destination drawn from the seed.)"""
    plain: dict[str, Any] = {
        "index": 0, "order_id": "", "delivery": "immediate", "duplicates": 0, "drop_rate": 0.0, "max_delay": 0.0,
        "replay_after_end": False, "customer_delay": 0.5, "stripe_faults": (), "aws_faults": (), "seed": 7,
    }  # fmt: skip
    return Schedule(payment=payment, **{**plain, **changes})


def written_out(seed: int, first_index: int, *, prefix: str = "rel") -> list[Schedule]:
    """The schedules every seed runs, whatever it draws: a Lambda timeout after the work was done at every step
    that invokes one (within its Retry, and past it), an outage at every step that parks (parking, and past the
    parking), second starts, and a day passing at Stripe while a step waits to run again, before a redrive and
    before a second start."""
    assert set(REACHES) == set(LAMBDA_STEPS)
    stripe_down = StripeFault("any", 500, should_retry=False, lasts=UNTIL_THE_END)
    chosen = [
        written(payment, aws_faults=(AwsFault("lambda", "Invoke", code, 500, times, True, step),))
        for step, payment in REACHES.items()
        if payment is not None
        for code, times in (("Unknown", 1), ("Sandbox.Timedout", 2), ("Unknown", 6))
    ]
    chosen += [
        written(
            REACHES[step], aws_faults=(AwsFault("lambda", "Invoke", "ServiceException", 500, step=step, lasts=lasts),)
        )
        for step in PARKING_STEPS
        for lasts in (6.0, UNTIL_THE_END)
    ]
    chosen += [
        written(payment, stripe_faults=(StripeFault(request, status, should_retry=False, lasts=6.0),))
        for request, payment in (
            ("create", "card"),
            ("retrieve", "card"),
            ("retrieve", "declined"),
            ("cancel", "3ds_abandoned"),
            ("cancel", "out_of_stock"),  # the release of the authorisation, under manual
            ("capture", "card"),
            ("refund", "out_of_stock"),
        )
        for status in (500, 429, 401)
    ]
    chosen += [written(payment, stripe_faults=(stripe_down,)) for payment in ("card", "3ds_pass", "sepa", "declined")]
    # Under manual: Stripe captured, its answer lost; the retried capture is refused, and the step reads the payment.
    chosen.append(written("card", stripe_faults=(StripeFault("capture", 500, after_commit=True, should_retry=False),)))
    # Every webhook lost, and the timeout's reconciliation cannot run: only the reconciler completes the paid order.
    chosen += [
        written("card", delivery="lost",
                stripe_faults=(StripeFault("retrieve", 500, should_retry=False, lasts=UNTIL_THE_END),)),
        written("sepa", delivery="lost", aws_faults=(
            AwsFault("lambda", "Invoke", "ServiceException", 500, step="ReconcileAfterTimeout", lasts=UNTIL_THE_END),
        )),
        # Stripe charged, but the attempt was never bound to its PaymentIntent: the order's reconciliation cannot
        # see it, the sweep (over Stripe's events) must.
        written("card", aws_faults=(
            AwsFault("dynamodb", "UpdateItem", "ThrottlingException", lasts=UNTIL_THE_END, starts_at=BINDING_WRITE),
        )),
    ]  # fmt: skip
    chosen += [
        written("card", aws_faults=(AwsFault("dynamodb", action, "ThrottlingException", lasts=lasts),))
        for action in ("UpdateItem", "TransactWriteItems")
        for lasts in (15.0, UNTIL_THE_END)
    ]
    chosen += [
        written(payment, second_start=second_start)
        for second_start in ("concurrent", "after_end", "after_keys_forgotten")
        for payment in ("card", "declined", "out_of_stock")
    ]
    binding_lost = AwsFault("dynamodb", "UpdateItem", "ThrottlingException", lasts=15.0, starts_at=BINDING_WRITE)
    refund_answer_lost = StripeFault("refund", 500, after_commit=True, should_retry=False, lasts=6.0)
    chosen += [
        written("card", aws_faults=(binding_lost,), key_pruning="while_retrying"),
        written("out_of_stock", stripe_faults=(refund_answer_lost,), key_pruning="while_retrying"),
        written(
            "3ds_pass",
            stripe_faults=(StripeFault("create", 500, should_retry=False, lasts=6.0),),
            key_pruning="while_retrying",
        ),
    ]
    chosen += [
        written(payment, key_pruning="before_rerun")
        for payment in ("card", "declined", "insufficient_funds", "3ds_abandoned", "out_of_stock")
    ]
    chosen.append(written("card", stripe_faults=(stripe_down,), key_pruning="before_rerun"))
    rng, destination_rng = random.Random(seed), destinations(seed, "written")
    return [
        replace(
            schedule,
            index=index,
            order_id=f"{order_prefix(prefix, seed)}-{index:05d}x",
            seed=rng.getrandbits(32),
            destination=pick(destination_rng, DESTINATION_WEIGHTS),
        )
        for index, schedule in enumerate(chosen, start=first_index)
    ]


def all_schedules(seed: int, count: int, *, prefix: str = "rel") -> list[Schedule]:
    """A seed's `count` drawn schedules, then the written-out ones (numbered after them)."""
    return generate_schedules(seed, count, prefix=prefix) + written_out(seed, count, prefix=prefix)


def order_input(order_id: str, payment: Payment) -> dict[str, Any]:
    return scenarios.order_input(order_id, payment.method, payment.items, customer_id=CUSTOMER)
