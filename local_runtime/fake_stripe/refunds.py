"""Refunds (https://docs.stripe.com/api/refunds) of a PaymentIntent's or a charge's captured amount."""

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError, Rejected, find
from local_runtime.fake_stripe.events import EventLog
from local_runtime.fake_stripe.forms import check_known, read_amount, read_metadata, read_str
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.payment_intents import PaymentIntents

REFUND_PARAMS = {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class Refunds:
    def __init__(self, clock: Clock, events: EventLog, payments: PaymentIntents) -> None:
        self._clock, self._events, self._payments = clock, events, payments
        self.refunds: dict[str, Obj] = {}

    def create(self, params: Obj, request: RequestRef) -> Obj:
        check_known(params, REFUND_PARAMS)
        amount = read_amount(params, required=False)
        reason = read_str(params, "reason", REFUND_REASONS)
        metadata = read_metadata(params)
        if not (params.get("payment_intent") or params.get("charge")):
            raise Rejected(
                400,
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        charge = self._refundable_charge(params)
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if charge["refunded"] or remaining <= 0:
            raise ApiError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise ApiError(
                400,
                f"Refund amount ({_money(amount)}) is greater than unrefunded amount on charge ({_money(remaining)})",
                param="amount",
            )
        refund: Obj = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": self._clock.timestamp(),
            "currency": charge["currency"],
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self._events.emit("charge.refunded", charge, request)
        return snapshot(refund)

    def retrieve(self, refund_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find(self.refunds, "refund", refund_id))

    def _refundable_charge(self, params: Obj) -> Obj:
        charges = self._payments.charges
        if params.get("payment_intent"):
            pi = find(self._payments.payment_intents, "payment_intent", params["payment_intent"], "payment_intent")
            if pi["status"] != "succeeded":
                message = f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund."
                raise ApiError(400, message, param="payment_intent")
            return charges[pi["latest_charge"]]
        charge = find(charges, "charge", params["charge"], "charge")
        if charge["status"] != "succeeded":
            raise ApiError(400, f"Charge {charge['id']} has not succeeded and cannot be refunded.", param="charge")
        if not charge["captured"]:
            # An authorization held for manual capture: it is released by canceling its PaymentIntent
            # (https://docs.stripe.com/api/payment_intents/cancel). The wording is the fake's, not Stripe's.
            message = f"Charge {charge['id']} has not been captured; cancel its PaymentIntent to release the hold."
            raise ApiError(400, message, param="charge")
        return charge


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"
