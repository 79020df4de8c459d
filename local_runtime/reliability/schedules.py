"""Seeded schedules: one order each, what its customer pays with and does, how Stripe delivers its events, its faults.

The tables here (and `faults.STRIPE_FAULTS`, `faults.AWS_FAULTS`) are what a seed draws from, in their order: an entry
added, removed or reweighted changes the schedules of every seed (see the package docstring).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from local_runtime import scenarios
from local_runtime.reliability.faults import AWS_FAULTS, STRIPE_FAULTS, AwsFault, StripeFault
from local_runtime.reliability.settings import CUSTOMER


@dataclass(frozen=True)
class Payment:
    """What the customer pays with, and what the customer does."""

    method: str | None
    customer: str | None = None  # 3ds_pass | 3ds_fail | pay_at_reconcile | pay_before_cancel | bank_settles
    items: tuple[tuple[str, int], ...] = (("MUG-BLUE", 2), ("TEA-EARL", 1))


PAYMENTS = {
    "card": Payment("pm_card_visa"),
    "declined": Payment("pm_card_chargeDeclined"),
    "insufficient_funds": Payment("pm_card_chargeDeclinedInsufficientFunds"),
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

    def describe(self) -> str:
        parts = [self.payment, f"delivery={self.delivery}"]
        if self.duplicates:
            parts.append(f"+{self.duplicates} copies")
        if self.delivery == "delayed":
            parts.append(f"<= {self.max_delay:.1f}s late")
        if self.delivery == "lossy":
            parts.append(f"{self.drop_rate:.0%} dropped")
        if self.replay_after_end:
            parts.append("replayed after the end")
        if PAYMENTS[self.payment].customer in ("3ds_pass", "3ds_fail", "bank_settles"):
            parts.append(f"customer/bank after {self.customer_delay:.1f}s")
        parts += [f.describe() for f in self.stripe_faults] + [f.describe() for f in self.aws_faults]
        return ", ".join(parts)


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def order_prefix(prefix: str, seed: int) -> str:
    """The start of a seed's order ids, of fixed width: no order id is a substring of another."""
    return f"{prefix}-{seed % 100000:05d}"


def generate_schedules(seed: int, count: int, *, prefix: str = "rel") -> list[Schedule]:
    """`count` schedules, the same for the same seed. Order ids are unique per seed and never a
    substring of one another (fixed width), so a fault can be aimed at one order's requests."""
    rng = random.Random(seed)
    schedules = []
    for index in range(count):
        payment = pick(rng, PAYMENT_WEIGHTS)
        delivery = pick(rng, DELIVERY_WEIGHTS)
        stripe_faults = tuple(rng.choice(STRIPE_FAULTS)(rng) for _ in range(rng.choice((0, 0, 0, 1, 1, 2))))
        aws_faults = tuple(rng.choice(AWS_FAULTS)(rng) for _ in range(rng.choice((0, 0, 0, 1, 1, 2))))
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
            )
        )
    return schedules


def order_input(order_id: str, payment: Payment) -> dict[str, Any]:
    return scenarios.order_input(order_id, payment.method, payment.items, customer_id=CUSTOMER)
