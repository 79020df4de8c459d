"""The reconciler: no paid order is left neither fulfilled nor refunded, and no stray payment is kept.

It compares what Stripe says was paid with the Orders table and repairs the difference with the very
steps the workflow uses (fulfil once, refund once), so that it can run at any time beside a live
execution: every write it makes is conditional, every Stripe write keyed.
"""

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from payments.errors import OutOfStock
from payments.executions import Executions
from payments.orders import parse_order
from payments.records import OrderRecords
from payments.steps import refund_payment
from payments.stripe_gateway import PaymentIntentView, StripeGateway

# Ends that are the business's answer, not a fault: anything else (NeedsAttention, a raw States.* error,
# a timeout or an abort of the whole execution) pages someone.
BUSINESS_OUTCOMES = frozenset({
    "InvalidOrder", "DuplicateOrder", "PaymentRequestRejected", "PaymentFailed", "PaymentCanceled",
    "PaymentTimedOut", "OutOfStock",
})  # fmt: skip
ALIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


class Finding(StrEnum):
    SETTLED = "settled"  # fulfilled with this PaymentIntent, or refunded
    IN_FLIGHT = "in_flight"  # its execution is running, or it succeeded moments ago
    FULFILLED = "fulfilled"  # repaired: paid and neither fulfilled nor refunded, now fulfilled
    REFUNDED = "refunded"  # repaired: paid, could not be fulfilled, now refunded
    STRAY_REFUNDED = "stray_refunded"  # paid, but not the PaymentIntent its order is bound to: refunded


@dataclass(frozen=True)
class Reconciler:
    stripe: StripeGateway
    orders: OrderRecords
    executions: Executions
    notify: Callable[[str, Any, dict[str, Any]], None]  # (kind, order, details): the customer's e-mail
    grace_seconds: int  # a payment younger than this is left to its execution

    def sweep(self, since: int, now: datetime) -> Counter[Finding]:
        """Every payment of this deployment that succeeded at Stripe since `since`."""
        return Counter(
            self.payment(payment_intent, succeeded_at, now)
            for payment_intent, succeeded_at in self.stripe.succeeded_payments(since)
        )

    def order(self, order_id: str, now: datetime) -> Counter[Finding]:
        """An order whose execution ended: each of its attempts' PaymentIntents that Stripe says is paid."""
        record = self.orders.get(order_id) or {}
        found: Counter[Finding] = Counter()
        for attempt in (record.get("attempts") or {}).values():
            if attempt.get("paymentIntentId"):
                payment_intent = self.stripe.retrieve(attempt["paymentIntentId"])
                if payment_intent.status == "succeeded":
                    found[self.payment(payment_intent, 0, now)] += 1
        return found

    def payment_intent(self, payment_intent_id: str, now: datetime) -> Finding | None:
        """One PaymentIntent, for instance one whose webhook found no execution waiting."""
        payment_intent = self.stripe.retrieve(payment_intent_id)
        if payment_intent.status != "succeeded" or not payment_intent.metadata.get("order_id"):
            return None
        return self.payment(payment_intent, 0, now)

    def payment(self, payment_intent: PaymentIntentView, succeeded_at: int, now: datetime) -> Finding:
        order_id = payment_intent.metadata["order_id"]
        attempt = int(payment_intent.metadata.get("attempt") or 1)
        record = self.orders.get(order_id)
        if record is None:
            return self._refund_stray(payment_intent, None, now)
        if record.get("status") == "refunded" or record.get("paymentIntentId") == payment_intent.id:
            return Finding.SETTLED
        if record.get("fulfilledAt"):  # fulfilled with another PaymentIntent
            return self._refund_stray(payment_intent, order_id, now)
        if now.timestamp() - succeeded_at < self.grace_seconds:
            return Finding.IN_FLIGHT
        if self.executions.status(record["executionId"]).status in ALIVE:
            return Finding.IN_FLIGHT
        bound = self.orders.record_payment_intent(order_id, attempt, payment_intent.id, now)
        if bound != payment_intent.id:
            return self._refund_stray(payment_intent, order_id, now)
        return self._complete(record, payment_intent, now)

    def _complete(self, record: dict[str, Any], payment_intent: PaymentIntentView, now: datetime) -> Finding:
        """A paid order its execution left behind: fulfil it, or refund it when the stock is gone."""
        order = parse_order(record)
        attempt = int(payment_intent.metadata.get("attempt") or 1)
        try:
            if not self.orders.fulfil(order, attempt, payment_intent.id, now, by="reconciler"):
                return Finding.SETTLED
        except OutOfStock as out_of_stock:
            error = {"Error": "OutOfStock", "Cause": json.dumps({"errorMessage": str(out_of_stock)})}
            result = refund_payment(order, payment_intent.id, error, stripe=self.stripe, orders=self.orders, now=now)
            self.notify("refunded", order, {"reason": result["reason"]})
            return Finding.REFUNDED
        self.notify("receipt", order, {"paymentIntentId": payment_intent.id})
        return Finding.FULFILLED

    def _refund_stray(self, payment_intent: PaymentIntentView, order_id: str | None, now: datetime) -> Finding:
        refund_id = self.stripe.refund(payment_intent.id, reason="StrayPayment")
        if order_id is not None:
            self.orders.note(
                order_id, "stray_payment_refunded", now, paymentIntentId=payment_intent.id, refundId=refund_id
            )
        return Finding.STRAY_REFUNDED


def needs_attention(status: str, error: str | None) -> bool:
    """Whether an execution's end is ours to look at (an alarm), rather than the business's answer."""
    return status in ("TIMED_OUT", "ABORTED") or (status == "FAILED" and error not in BUSINESS_OUTCOMES)
