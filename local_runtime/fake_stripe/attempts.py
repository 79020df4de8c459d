"""One payment attempt of a PaymentIntent: its charge, 3-D Secure, the bank, and how it ends.

- A card that needs authentication moves the PaymentIntent to `requires_action`
  (https://docs.stripe.com/payments/paymentintents/lifecycle) and only the customer's answer on the hosted
  3-D Secure page moves it on (`authenticated`); after a failed authentication it is back in
  `requires_payment_method` with `payment_intent_authentication_failure`
  (https://docs.stripe.com/payments/3d-secure/authentication-flow#testing).
- Off-session, nobody can authenticate: "If the payment requires authentication, the PaymentIntent fails with an
  `authentication_required` decline code and moves to `requires_payment_method`"
  (https://docs.stripe.com/payments/save-during-payment#charge-saved-payment-method); the saved card may be
  confirmed again on the same PaymentIntent later.
- After a failure "Stripe detaches the PaymentMethod" from the PaymentIntent and keeps the error in
  `last_payment_error` (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-last_payment_error).
- `processing` moves on only by the bank (`settle`).
- A card whose capture method is `manual` (capture_methods.py) is authorized and held, not captured: the
  PaymentIntent waits in `requires_capture` (authorizations.py).
"""

from collections.abc import Callable

from local_runtime.fake_stripe.authorizations import Authorizations
from local_runtime.fake_stripe.capture_methods import capture_method_for
from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError
from local_runtime.fake_stripe.events import EventLog
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.payment_methods import PaymentMethods
from local_runtime.fake_stripe.sandbox import ASYNC_FAILURE, ERROR_MESSAGES, TestPaymentMethod
from local_runtime.fake_stripe.three_d_secure import Challenges

# Called with (PaymentIntent id, charge id, behaviour) when a bank debit starts processing.
SettlementScheduler = Callable[[str, str, TestPaymentMethod], None]


class Attempts:
    def __init__(
        self,
        clock: Clock,
        events: EventLog,
        methods: PaymentMethods,
        challenges: Challenges,
        authorizations: Authorizations,
        schedule_settlement: SettlementScheduler,
    ) -> None:
        self._clock, self._events, self._methods = clock, events, methods
        self._challenges, self._authorizations = challenges, authorizations
        self._schedule_settlement = schedule_settlement
        self.charges: dict[str, Obj] = {}

    def attempt(
        self,
        pi: Obj,
        pm_id: str,
        request: RequestRef,
        *,
        off_session: bool,
        return_url: str | None,
        use_stripe_sdk: bool,
    ) -> None:
        """Confirm `pi` with `pm_id`; a decline raises Stripe's 402 card error (saved for the idempotency key)."""
        test = self._methods.behaviour(pm_id)
        if not pi["setup_future_usage"]:
            self._methods.use(pm_id)
        pi.update(payment_method=pm_id, last_payment_error=None, next_action=None)
        charge = self._new_charge(pi, pm_id, test)
        if test.needs_authentication(off_session, self._methods.is_set_up(pm_id)):
            if off_session:
                error = self._fail(pi, request, "authentication_required", decline_code="authentication_required")
                raise ApiError(402, payment_intent=snapshot(pi), **error)
            next_action = self._challenges.start(pi, return_url=return_url, use_stripe_sdk=use_stripe_sdk)
            pi.update(status="requires_action", next_action=next_action)
            self._events.emit("payment_intent.requires_action", pi, request)
            return
        error = self._charge(pi, test, charge, request, merchant_initiated=off_session)
        if error:
            raise ApiError(402, payment_intent=snapshot(pi), **error)

    def authenticated(self, pi: Obj, succeed: bool) -> None:
        """The customer's answer to the 3-D Secure challenge (the hosted page's buttons)."""
        if not succeed:
            self._fail(pi, RequestRef(), "payment_intent_authentication_failure")
            return
        pm_id = pi["payment_method"]
        test = self._methods.behaviour(pm_id)
        self._charge(pi, test, self.charges[pi["latest_charge"]], RequestRef(), merchant_initiated=False)

    def settle(self, pi: Obj, succeed: bool) -> None:
        if succeed:
            self._succeed(pi, RequestRef())
        else:
            decline = self._methods.behaviour(pi["payment_method"]).decline_code or ASYNC_FAILURE
            self._fail(pi, RequestRef(), decline)

    def _charge(
        self, pi: Obj, test: TestPaymentMethod, charge: Obj, request: RequestRef, *, merchant_initiated: bool
    ) -> Obj | None:
        """Send the payment to the card network or bank; the error of a decline, else None."""
        if test.outcome == "decline":
            return self._fail(pi, request, "card_declined", decline_code=test.decline_code)
        self._save_for_future_use(pi)
        if test.outcome == "succeed" and capture_method_for(pi, test.type) == "manual":
            self._authorizations.hold(pi, charge, test, request, merchant_initiated=merchant_initiated)
        elif test.outcome == "succeed":
            self._succeed(pi, request)
        else:
            pi.update(status="processing", next_action=None)
            self._events.emit("payment_intent.processing", pi, request)
            if test.settles_ok is not None:
                self._schedule_settlement(pi["id"], charge["id"], test)
        return None

    def _save_for_future_use(self, pi: Obj) -> None:
        if pi["setup_future_usage"] and pi["customer"]:
            self._methods.save(pi["payment_method"], pi["customer"])

    def _succeed(self, pi: Obj, request: RequestRef) -> None:
        charge = self.charges[pi["latest_charge"]]
        charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None, next_action=None)
        self._events.emit("charge.succeeded", charge, request)
        self._events.emit("payment_intent.succeeded", pi, request)

    def _fail(self, pi: Obj, request: RequestRef, code: str, decline_code: str | None = None) -> Obj:
        charge = self.charges[pi["latest_charge"]]
        error: Obj = {
            "type": "card_error" if decline_code else "invalid_request_error",
            "code": code,
            "message": ERROR_MESSAGES[decline_code or code],
            "charge": charge["id"],
            "payment_method": snapshot(self._methods.payment_methods[pi["payment_method"]]),
        }
        if decline_code:
            error["decline_code"] = decline_code
        charge.update(status="failed", failure_code=decline_code or code, failure_message=error["message"])
        pi.update(status="requires_payment_method", payment_method=None, next_action=None, last_payment_error=error)
        self._events.emit("payment_intent.payment_failed", pi, request)
        return error

    def _new_charge(self, pi: Obj, pm_id: str, test: TestPaymentMethod) -> Obj:
        charge: Obj = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "created": self._clock.timestamp(),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "paid": False,
            "payment_intent": pi["id"],
            "payment_method": pm_id,
            "payment_method_details": {"type": test.type, test.type: _details(test)},
            "refunded": False,
            "status": "pending",
        }
        self.charges[charge["id"]] = charge
        pi["latest_charge"] = charge["id"]
        return charge


def _details(test: TestPaymentMethod) -> Obj:
    """The charge's `payment_method_details[<type>]`: the card's brand and last four digits, a bank's last four."""
    if test.type == "card":
        return {"brand": test.brand, "last4": test.last4}
    return {"last4": test.last4}
