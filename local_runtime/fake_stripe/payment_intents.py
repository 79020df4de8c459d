"""PaymentIntents (https://docs.stripe.com/api/payment_intents) and the charges their attempts make, paid with
Stripe's test PaymentMethods. `requires_action` moves on only by the customer's path (`complete_3ds`) and
`processing` only by the bank's (`settle`), never by the merchant's API calls."""

import re
from collections.abc import Callable

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError, Rejected, find, missing
from local_runtime.fake_stripe.events import EventLog
from local_runtime.fake_stripe.forms import (
    check_known,
    read_amount,
    read_bool,
    read_metadata,
    read_str,
    read_str_list,
)
from local_runtime.fake_stripe.lists import list_page
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.payment_methods import (
    ASYNC_FAILURE,
    ERROR_MESSAGES,
    TEST_PAYMENT_METHODS,
    TestPaymentMethod,
    find_test_payment_method,
    payment_method_object,
)

# https://docs.stripe.com/api/payment_intents/cancel
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CONFIRM_PARAMS = {"payment_method", "return_url", "off_session", "receipt_email", "expand"}
CREATE_PARAMS = CONFIRM_PARAMS | {
    "amount",
    "currency",
    "customer",
    "confirm",
    "metadata",
    "description",
    "automatic_payment_methods",
    "payment_method_types",
    "capture_method",
    "statement_descriptor_suffix",
}
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")

# Called with (PaymentIntent id, charge id, PaymentMethod) when a bank debit starts processing.
SettlementScheduler = Callable[[str, str, TestPaymentMethod], None]


class PaymentIntents:
    def __init__(self, clock: Clock, events: EventLog, schedule_settlement: SettlementScheduler) -> None:
        self._clock, self._events, self._schedule_settlement = clock, events, schedule_settlement
        self.payment_intents: dict[str, Obj] = {}
        self.charges: dict[str, Obj] = {}
        # Ids the next PaymentIntents created get, in order, before random ones: a sample event's, say.
        self.next_ids: list[str] = []

    # ----------------------------------------------------------------- endpoints
    def create(self, params: Obj, request: RequestRef) -> Obj:
        check_known(params, CREATE_PARAMS, {"automatic_payment_methods": {"enabled", "allow_redirects"}})
        amount = read_amount(params)
        currency = read_str(params, "currency")
        if not currency:
            raise missing("currency")
        if not re.fullmatch(r"[a-zA-Z]{3}", currency):
            raise Rejected(400, f"Invalid currency: {currency}.", param="currency")
        capture = read_str(params, "capture_method", ("automatic", "automatic_async")) or "automatic_async"
        types = read_str_list(params, "payment_method_types")
        apm = params.get("automatic_payment_methods")
        metadata = read_metadata(params)
        if not isinstance(apm or {}, dict):
            raise Rejected(400, "Invalid hash", param="automatic_payment_methods")
        confirm, off_session = read_bool(params, "confirm"), read_bool(params, "off_session")
        if off_session and not confirm:
            raise Rejected(400, "You may only specify `off_session` when `confirm` is true.", param="off_session")
        pm_id = read_str(params, "payment_method")
        if confirm and not pm_id:
            raise missing("payment_method")
        pm = find_test_payment_method(pm_id) if pm_id else None
        if pm and types and pm.type not in types:
            raise _incompatible(pm, types)
        pi_id = self.next_ids.pop(0) if self.next_ids else new_id("pi")
        pi: Obj = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": None
            if types
            else {"allow_redirects": (apm or {}).get("allow_redirects", "always"), "enabled": True},
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture,
            "client_secret": f"{pi_id}_secret_{new_id('x')[2:]}",
            "confirmation_method": "automatic",
            "created": self._clock.timestamp(),
            "currency": currency.lower(),
            "customer": read_str(params, "customer"),
            "description": read_str(params, "description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "payment_method": pm_id,
            "payment_method_types": types or [pm.type if pm else "card"],
            "receipt_email": read_str(params, "receipt_email"),
            "setup_future_usage": None,
            "statement_descriptor_suffix": read_str(params, "statement_descriptor_suffix"),
            "status": "requires_confirmation" if pm else "requires_payment_method",
        }
        self.payment_intents[pi_id] = pi
        self._events.emit("payment_intent.created", pi, request)
        if confirm and pm and pm_id:
            self._confirm(pi, pm_id, pm, off_session, request)
        return self._render(pi, params)

    def retrieve(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        return self._render(find(self.payment_intents, "payment_intent", pi_id, "intent"), params)

    def list_all(self, params: Obj, request: RequestRef) -> Obj:
        """https://docs.stripe.com/api/payment_intents/list, filtered by `customer` too."""
        customer = read_str(params, "customer")
        return list_page(
            "payment_intent",
            "/v1/payment_intents",
            list(self.payment_intents.values()),
            params,
            ("customer",),
            lambda pi: customer is None or pi["customer"] == customer,
        )

    def confirm(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        check_known(params, CONFIRM_PARAMS)
        off_session = read_bool(params, "off_session")
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        if pi["status"] not in CONFIRMABLE:
            raise _unexpected_state(pi, "confirm")
        pm_id = read_str(params, "payment_method") or pi["payment_method"]
        if not pm_id:
            raise ApiError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. Update the "
                "PaymentIntent with a payment method and then confirm it again.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        pm = find_test_payment_method(pm_id)
        if not pi["automatic_payment_methods"] and pm.type not in pi["payment_method_types"]:
            raise _incompatible(pm, pi["payment_method_types"])
        if params.get("receipt_email"):
            pi["receipt_email"] = params["receipt_email"]
        self._confirm(pi, pm_id, pm, off_session, request)
        return self._render(pi, params)

    def cancel(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        check_known(params, {"cancellation_reason", "expand"})
        reason = read_str(params, "cancellation_reason", CANCELLATION_REASONS)
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        if pi["status"] not in CANCELABLE:
            raise _unexpected_state(pi, "cancel")
        pi.update(status="canceled", canceled_at=self._clock.timestamp(), cancellation_reason=reason, next_action=None)
        self._events.emit("payment_intent.canceled", pi, request)
        return self._render(pi, params)

    def retrieve_charge(self, charge_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find(self.charges, "charge", charge_id))

    # ----------------------------------------------------------------- the customer's and the bank's path
    def complete_3ds(self, pi_id: str, succeed: bool) -> None:
        pi = self._in_state(pi_id, "requires_action")
        if succeed:
            self._succeed(pi, RequestRef())
        else:
            self._fail(pi, RequestRef(), "payment_intent_authentication_failure")

    def settle(self, pi_id: str, succeed: bool) -> None:
        pi = self._in_state(pi_id, "processing")
        if succeed:
            self._succeed(pi, RequestRef())
        else:
            self._fail(pi, RequestRef(), TEST_PAYMENT_METHODS[pi["payment_method"]].decline_code or ASYNC_FAILURE)

    def still_processing(self, pi_id: str, charge_id: str) -> bool:
        pi = self.payment_intents.get(pi_id)
        return pi is not None and pi["status"] == "processing" and pi["latest_charge"] == charge_id

    # ----------------------------------------------------------------- attempts
    def _confirm(self, pi: Obj, pm_id: str, pm: TestPaymentMethod, off_session: bool, request: RequestRef) -> None:
        pi.update(payment_method=pm_id, last_payment_error=None, next_action=None)
        charge = self._new_charge(pi, pm_id, pm)
        if pm.outcome == "succeed":
            self._succeed(pi, request)
        elif pm.outcome == "decline" or (pm.outcome == "authenticate" and off_session):
            decline = pm.decline_code or "authentication_required"
            code = "card_declined" if pm.outcome == "decline" else "authentication_required"
            error = self._fail(pi, request, code, decline_code=decline)
            raise ApiError(402, payment_intent=snapshot(pi), **error)
        elif pm.outcome == "authenticate":
            source = new_id("src")
            pi.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "source": source,
                        "stripe_js": f"https://hooks.stripe.com/redirect/authenticate/{source}",
                    },
                },
            )
            self._events.emit("payment_intent.requires_action", pi, request)
        else:
            pi["status"] = "processing"
            self._events.emit("payment_intent.processing", pi, request)
            if pm.settles_ok is not None:
                self._schedule_settlement(pi["id"], charge["id"], pm)

    def _succeed(self, pi: Obj, request: RequestRef) -> None:
        charge = self.charges[pi["latest_charge"]]
        charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None, next_action=None)
        self._events.emit("charge.succeeded", charge, request)
        self._events.emit("payment_intent.succeeded", pi, request)

    def _fail(self, pi: Obj, request: RequestRef, code: str, decline_code: str | None = None) -> Obj:
        """Fail the current attempt: Stripe detaches the PaymentMethod and keeps the error on the intent."""
        charge = self.charges[pi["latest_charge"]]
        error: Obj = {
            "type": "card_error" if decline_code else "invalid_request_error",
            "code": code,
            "message": ERROR_MESSAGES[decline_code or code],
            "charge": charge["id"],
            "payment_method": payment_method_object(pi["payment_method"]),
        }
        if decline_code:
            error["decline_code"] = decline_code
        charge.update(status="failed", failure_code=decline_code or code, failure_message=error["message"])
        pi.update(status="requires_payment_method", payment_method=None, next_action=None, last_payment_error=error)
        self._events.emit("payment_intent.payment_failed", pi, request)
        return error

    def _new_charge(self, pi: Obj, pm_id: str, pm: TestPaymentMethod) -> Obj:
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
            "payment_method_details": {"type": pm.type, pm.type: {"last4": pm.last4}},
            "refunded": False,
            "status": "pending",
        }
        self.charges[charge["id"]] = charge
        pi["latest_charge"] = charge["id"]
        return charge

    def _in_state(self, pi_id: str, status: str) -> Obj:
        pi = self.payment_intents.get(pi_id)
        if pi is None or pi["status"] != status:
            raise ValueError(f"{pi_id} is {pi and pi['status']}, expected {status}")
        return pi

    def _render(self, pi: Obj, params: Obj) -> Obj:
        out = snapshot(pi)
        if "latest_charge" in (params.get("expand") or ()) and pi["latest_charge"]:
            out["latest_charge"] = snapshot(self.charges[pi["latest_charge"]])
        return out


def _unexpected_state(pi: Obj, action: str) -> ApiError:
    message = f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}."
    if action == "cancel":
        message += f" Only a PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}."
    return ApiError(400, message, code="payment_intent_unexpected_state", payment_intent=snapshot(pi))


def _incompatible(pm: TestPaymentMethod, types: list[str]) -> ApiError:
    return ApiError(
        400,
        f"The PaymentMethod provided ({pm.type}) is not allowed for this PaymentIntent. "
        f"Allowed types: {', '.join(types)}.",
        code="payment_intent_incompatible_payment_method",
        param="payment_method",
    )
