"""Card authorizations held for manual capture: the hold, its capture, its release and its expiry.

Stripe's behaviour, as this module follows it (API version 2026-10-28.endive, so after 2025-03-31.basil):

- The hold. A card payment whose capture method is `manual` (capture_methods.py) stops at `requires_capture`
  once the card is authorized: "After the card is authorized, the PaymentIntent status will transition to
  requires_capture", and "when a customer completes the payment process on a PaymentIntent with manual capture, it
  triggers the payment_intent.amount_capturable_updated event" (https://stripe.com/docs/payments/capture-later).
  `amount_capturable` is the amount held. The charge is authorized, not captured: `status: "succeeded"`, `paid:
  true`, `captured: false`, `amount_captured: 0` (Stripe's example charge,
  https://docs.stripe.com/api/charges/object), and it is announced by `charge.succeeded`.
- When it expires. "the payment_method_details.card.capture_before attribute on the charge indicates when the
  authorization expires" (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method). The validity windows
  there: 7 days for a customer-initiated card-not-present payment, whatever the brand; for a merchant-initiated
  one (here: confirmed `off_session`, https://docs.stripe.com/payments/cits-and-mits) 7 days too, but Visa's is
  5 days, "exactly 4 days and 18 hours, to allow time for clearing processes".
- Capture (https://docs.stripe.com/api/payment_intents/capture): only in `requires_capture`; `amount_to_capture`
  "must be less than or equal to the original amount. Defaults to the full amount_capturable"; "Partially capturing
  automatically releases the remaining amount" and "Authorized payments can only be captured once"
  (https://stripe.com/docs/payments/capture-later). The PaymentIntent is then `succeeded` with `amount_received`
  the amount captured; events `charge.captured` and `payment_intent.succeeded`. Since 2025-03-31.basil a partial
  capture creates no Refund: the charge's `amount_refunded` stays 0 and `refunded` false
  (https://docs.stripe.com/changelog/basil/2025-03-31/remove-refund-from-partial-capture-and-payment-cancellation-flow).
  Another status answers 400 `payment_intent_unexpected_state`, "This PaymentIntent could not be captured because
  it has a status of canceled. Only a PaymentIntent with one of the following statuses may be captured:
  requires_capture." with the PaymentIntent in the error (Stripe's body for an expired authorization, as quoted in
  elasticpath/elasticpath-dev, docs/carts-orders/capture-a-transaction.md); more than the capturable
  amount answers 400 `amount_too_large`, "The payment could not be captured because the requested capture amount is
  greater than the amount you can capture for this charge." (Stripe's wording, as integrations quote it, e.g.
  https://github.com/Automattic/woocommerce-payments/issues/7029).
- Release. Canceling a `requires_capture` PaymentIntent releases the hold: "For PaymentIntents with a status of
  requires_capture, the remaining amount_capturable is automatically refunded"
  (https://docs.stripe.com/api/payment_intents/cancel); since basil no Refund object, no `charge.refunded`, the
  charge's `refunded` stays false; the event is `payment_intent.canceled` (basil changelog above).
- Expiry. "If the authorization expires before you capture the funds, the funds are released and the payment
  status changes to canceled" (place-a-hold page); since basil its `cancellation_reason` is `expired` ("This new
  value represents payments cancelled because of authorisation expiry. It replaces the formerly used value of
  automatic") and Stripe "still sends charge.expired ... and payment_intent.canceled" (basil changelog). Here it
  happens when the fake's clock reaches `capture_before`: at the first API request after that moment, or as soon
  as a test moves the clock past it; both events and `canceled_at` are dated `capture_before`, when Stripe would
  have sent them.
"""

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError, Rejected
from local_runtime.fake_stripe.events import EventLog
from local_runtime.fake_stripe.forms import check_known, read_str, to_integer
from local_runtime.fake_stripe.objects import Obj, RequestRef, snapshot
from local_runtime.fake_stripe.sandbox import TestPaymentMethod

DAY = 24 * 3600
CUSTOMER_INITIATED_SECONDS = 7 * DAY
MERCHANT_INITIATED_SECONDS = {"visa": 4 * DAY + 18 * 3600}  # other brands: 7 days
CAPTURE_PARAMS = {"amount_to_capture", "metadata", "statement_descriptor_suffix", "expand"}


def validity_seconds(brand: str, merchant_initiated: bool) -> int:
    """How long a card-not-present authorization may be captured (the place-a-hold page's tables)."""
    if merchant_initiated:
        return MERCHANT_INITIATED_SECONDS.get(brand, CUSTOMER_INITIATED_SECONDS)
    return CUSTOMER_INITIATED_SECONDS


class Authorizations:
    def __init__(self, clock: Clock, events: EventLog) -> None:
        self._clock, self._events = clock, events
        self._held: dict[str, tuple[Obj, Obj]] = {}  # PaymentIntent id -> (PaymentIntent, charge), while held

    def hold(
        self, pi: Obj, charge: Obj, test: TestPaymentMethod, request: RequestRef, *, merchant_initiated: bool
    ) -> None:
        """The card is authorized and the amount held: `requires_capture` until captured, canceled or expired."""
        authorized_at = self._clock.timestamp()
        card = charge["payment_method_details"]["card"]
        card.update(
            amount_authorized=charge["amount"],
            capture_before=authorized_at + validity_seconds(test.brand, merchant_initiated),
        )
        charge.update(status="succeeded", paid=True, captured=False, amount_captured=0)
        pi.update(status="requires_capture", amount_capturable=pi["amount"], last_payment_error=None, next_action=None)
        self._held[pi["id"]] = (pi, charge)
        self._events.emit("charge.succeeded", charge, request)
        self._events.emit("payment_intent.amount_capturable_updated", pi, request)

    def capture(self, pi: Obj, params: Obj, request: RequestRef) -> None:
        """POST /v1/payment_intents/{id}/capture on `pi`."""
        check_known(params, CAPTURE_PARAMS)
        amount = params.get("amount_to_capture")
        amount = None if amount is None else to_integer(amount, "amount_to_capture", minimum=1)
        suffix = read_str(params, "statement_descriptor_suffix")
        metadata = params.get("metadata")
        if metadata is not None and not (
            metadata == "" or (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()))
        ):
            raise Rejected(400, "Invalid hash", param="metadata")
        held = self._held.get(pi["id"])
        if pi["status"] != "requires_capture" or held is None:
            raise ApiError(
                400,
                f"This PaymentIntent could not be captured because it has a status of {pi['status']}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
                payment_intent=snapshot(pi),
            )
        charge = held[1]
        amount = pi["amount_capturable"] if amount is None else amount
        if amount > pi["amount_capturable"]:
            raise ApiError(
                400,
                "The payment could not be captured because the requested capture amount is greater than the amount "
                "you can capture for this charge.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        del self._held[pi["id"]]
        _update_metadata(pi, metadata)
        if suffix is not None:
            pi["statement_descriptor_suffix"] = suffix
        charge.update(captured=True, amount_captured=amount)
        pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self._events.emit("charge.captured", charge, request)
        self._events.emit("payment_intent.succeeded", pi, request)

    def release(self, pi: Obj) -> None:
        """The hold of a PaymentIntent being canceled in `requires_capture` (its caller records the cancel)."""
        self._held.pop(pi["id"], None)
        pi["amount_capturable"] = 0

    def expire_due(self) -> None:
        """Cancel every hold whose `capture_before` the clock has reached, dated when Stripe would have done it."""
        now = self._clock.now()
        for pi_id, (pi, charge) in list(self._held.items()):
            expires_at = charge["payment_method_details"]["card"]["capture_before"]
            if now < expires_at:
                continue
            del self._held[pi_id]
            pi.update(status="canceled", cancellation_reason="expired", canceled_at=expires_at, amount_capturable=0)
            self._events.emit("charge.expired", charge, RequestRef(), at=expires_at)
            self._events.emit("payment_intent.canceled", pi, RequestRef(), at=expires_at)


def _update_metadata(pi: Obj, metadata: Obj | str | None) -> None:
    """Stripe's metadata update: an empty value unsets a key, an empty `metadata` unsets them all."""
    if metadata == "":
        pi["metadata"] = {}
        return
    for key, value in (metadata or {}).items():
        if value == "":
            pi["metadata"].pop(key, None)
        else:
            pi["metadata"][key] = value
