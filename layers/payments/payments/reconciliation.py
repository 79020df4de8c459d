"""The reconciler: no paid order is left neither fulfilled nor refunded, no authorised one neither captured nor
released, and no stray payment is kept.

It compares what Stripe says was paid with the Orders table and repairs the difference with the very
steps the workflow uses (fulfil once, refund once), so that it can run at any time beside a live
execution: every write it makes is conditional, every Stripe write keyed.
"""

import json
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from payments.errors import AuthorizationExpired, OutOfStock, PaymentRequestRejected
from payments.executions import Executions
from payments.orders import parse_order
from payments.records import OrderRecords
from payments.steps import capture_payment, refund_payment, release_authorization, reserve_stock
from payments.stripe_gateway import PaymentIntentView, StripeGateway

# Ends that are the business's answer, not a fault: anything else (NeedsAttention, a raw States.* error,
# a timeout or an abort of the whole execution) pages someone.
BUSINESS_OUTCOMES = frozenset({
    "InvalidOrder", "DuplicateOrder", "PaymentRequestRejected", "PaymentFailed", "PaymentCanceled",
    "PaymentTimedOut", "OutOfStock", "AuthorizationExpired",
})  # fmt: skip
ALIVE = frozenset({"RUNNING", "PENDING_REDRIVE"})


class Finding(StrEnum):
    SETTLED = "settled"  # fulfilled with this PaymentIntent, or refunded
    IN_FLIGHT = "in_flight"  # its execution is running, or it succeeded moments ago
    FULFILLED = "fulfilled"  # repaired: paid and neither fulfilled nor refunded, now fulfilled
    REFUNDED = "refunded"  # repaired: paid, could not be fulfilled, now refunded
    RELEASED = "released"  # repaired: authorised, out of stock or past its deadline, now released (no charge)
    STRAY_REFUNDED = "stray_refunded"  # paid, but not the PaymentIntent its order is bound to: refunded
    STRAY_RELEASED = "stray_released"  # authorised, but not the PaymentIntent its order is bound to: released


@dataclass(frozen=True)
class Reconciler:
    stripe: StripeGateway
    orders: OrderRecords
    executions: Executions
    notify: Callable[[str, Any, dict[str, Any]], None]  # (kind, order, details): the customer's e-mail
    grace_seconds: int  # a payment younger than this is left to its execution

    def sweep(self, since: int, now: datetime) -> Counter[Finding]:
        """Every payment of this deployment that succeeded, or was authorised, at Stripe since `since`."""
        found: Counter[Finding] = Counter()
        for payment_intent, at in self.stripe.paid_or_authorised(since):
            if payment_intent.status == "requires_capture":
                payment_intent = self.stripe.authorization(payment_intent.id)  # captured or released since?
                if payment_intent.status != "requires_capture":
                    continue  # a capture has its own succeeded event; a released authorisation costs nothing
            found[self.payment(payment_intent, at, now)] += 1
        return found

    def order(self, order_id: str, now: datetime) -> Counter[Finding]:
        """An order whose execution ended: each of its attempts' PaymentIntents that Stripe says is paid or
        authorised, and stock still held for an authorisation that ended."""
        record = self.orders.get(order_id) or {}
        found: Counter[Finding] = Counter()
        attempts = (record.get("attempts") or {}).values()
        for payment_intent_id in dict.fromkeys(a["paymentIntentId"] for a in attempts if a.get("paymentIntentId")):
            payment_intent = self.stripe.authorization(payment_intent_id)
            if payment_intent.status in ("succeeded", "requires_capture"):
                found[self.payment(payment_intent, 0, now)] += 1
            elif payment_intent.status == "canceled" and record.get("reservedPaymentIntentId") == payment_intent_id:
                reason = f"the authorisation of {payment_intent_id} ended ({payment_intent.cancellation_reason})"
                if self.orders.release(parse_order(record), payment_intent_id, now, reason):
                    found[Finding.RELEASED] += 1
        return found

    def payment_intent(self, payment_intent_id: str, now: datetime) -> Finding | None:
        """One PaymentIntent, for instance one whose webhook found no execution waiting."""
        payment_intent = self.stripe.authorization(payment_intent_id)
        if payment_intent.status not in ("succeeded", "requires_capture"):
            return None
        if not payment_intent.metadata.get("order_id"):
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
        """A paid order its execution left behind: fulfil it, or refund it when the stock is gone. An authorised
        one takes the workflow's steps: reserve, capture, fulfil; or release when out of stock or too late."""
        order = parse_order(record)
        attempt = int(payment_intent.metadata.get("attempt") or 1)
        if payment_intent.status == "requires_capture":
            try:
                reserved = reserve_stock(order, payment_intent.id, stripe=self.stripe, orders=self.orders, now=now)
                capture_payment(payment_intent.id, reserved["captureBefore"], stripe=self.stripe, now=now)
            except (OutOfStock, AuthorizationExpired) as ended:
                error = {"Error": type(ended).__name__, "Cause": json.dumps({"errorMessage": str(ended)})}
                released = release_authorization(
                    order, payment_intent.id, error, stripe=self.stripe, orders=self.orders, now=now
                )
                kind = "out_of_stock" if isinstance(ended, OutOfStock) else "authorization_expired"
                self.notify(kind, order, {"reason": released["reason"]})
                return Finding.RELEASED
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
        if payment_intent.status == "requires_capture":
            with suppress(PaymentRequestRejected):  # captured or lapsed meanwhile: the next sweep sees which
                self.stripe.cancel(payment_intent.id, "abandoned")
            if order_id is not None:
                self.orders.note(order_id, "stray_authorisation_released", now, paymentIntentId=payment_intent.id)
            return Finding.STRAY_RELEASED
        refund_id = self.stripe.refund(payment_intent.id, reason="StrayPayment")
        if order_id is not None:
            self.orders.note(
                order_id, "stray_payment_refunded", now, paymentIntentId=payment_intent.id, refundId=refund_id
            )
        return Finding.STRAY_REFUNDED


def needs_attention(status: str, error: str | None) -> bool:
    """Whether an execution's end is ours to look at (an alarm), rather than the business's answer."""
    return status in ("TIMED_OUT", "ABORTED") or (status == "FAILED" and error not in BUSINESS_OUTCOMES)
