"""PaymentIntents (https://docs.stripe.com/api/payment_intents): the merchant's endpoints and the customer's.

The customer's browser (Stripe.js, with the publishable key) may retrieve a PaymentIntent and confirm it when it
passes the PaymentIntent's `client_secret` (https://docs.stripe.com/api/payment_intents/retrieve: "You can
retrieve a PaymentIntent client-side using a publishable key when the client_secret is in the query string. If
you retrieve a PaymentIntent with a publishable key, it only returns a subset of properties"); a secret that
does not match is refused. What each attempt does is in attempts.py; which key may call what, in access.py; the
capture method and `payment_method_options` in capture_methods.py; capturing a held card
(https://docs.stripe.com/api/payment_intents/capture) in authorizations.py.
"""

import hmac
import re

from local_runtime.fake_stripe.attempts import Attempts
from local_runtime.fake_stripe.authorizations import Authorizations
from local_runtime.fake_stripe.capture_methods import (
    DEFAULT_CAPTURE_METHOD,
    payment_method_options,
    read_capture_method,
    read_payment_method_options,
    refuse_unsupported,
)
from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError, Rejected, exclusive, find, missing
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
from local_runtime.fake_stripe.payment_methods import PaymentMethods

# https://docs.stripe.com/api/payment_intents/cancel
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
SETUP_FUTURE_USAGE = ("on_session", "off_session")
CONFIRM_PARAMS = {
    "capture_method",
    "payment_method_options",
    "payment_method",
    "payment_method_data",
    "return_url",
    "off_session",
    "receipt_email",
    "setup_future_usage",
    "use_stripe_sdk",
    "client_secret",
    "expand",
}
CREATE_PARAMS = (CONFIRM_PARAMS - {"client_secret"}) | {
    "amount",
    "currency",
    "customer",
    "confirm",
    "metadata",
    "description",
    "automatic_payment_methods",
    "payment_method_types",
    "statement_descriptor_suffix",
}
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
# The PaymentIntent's properties "retrievable with publishable key" (https://docs.stripe.com/api/payment_intents/object).
PUBLISHABLE_FIELDS = (
    "id", "object", "amount", "automatic_payment_methods", "canceled_at", "cancellation_reason", "capture_method",
    "client_secret", "confirmation_method", "created", "currency", "description", "last_payment_error", "livemode",
    "next_action", "payment_method", "payment_method_types", "receipt_email", "setup_future_usage", "status",
)  # fmt: skip


class PaymentIntents:
    def __init__(
        self,
        clock: Clock,
        events: EventLog,
        methods: PaymentMethods,
        attempts: Attempts,
        authorizations: Authorizations,
    ) -> None:
        self._clock, self._events, self._methods, self._attempts = clock, events, methods, attempts
        self._authorizations = authorizations
        self.payment_intents: dict[str, Obj] = {}
        self.charges = attempts.charges
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
        capture = read_capture_method(params) or DEFAULT_CAPTURE_METHOD
        options = read_payment_method_options(params)
        types = read_str_list(params, "payment_method_types")
        apm = params.get("automatic_payment_methods")
        metadata = read_metadata(params)
        if not isinstance(apm or {}, dict):
            raise Rejected(400, "Invalid hash", param="automatic_payment_methods")
        confirm, off_session = read_bool(params, "confirm"), read_bool(params, "off_session")
        if off_session and not confirm:
            raise Rejected(400, "You may only specify `off_session` when `confirm` is true.", param="off_session")
        customer = read_str(params, "customer")
        if customer is not None:
            self._methods.customer(customer)  # Stripe: 400 resource_missing "No such customer"
        setup_future_usage = read_str(params, "setup_future_usage", SETUP_FUTURE_USAGE)
        pm = self._payment_method_of(params, customer)
        if confirm and not pm:
            raise missing("payment_method")
        if pm and types and pm["type"] not in types:
            raise _incompatible(pm, types)
        pm_types = types or [pm["type"] if pm else "card"]
        pi_id = self.next_ids[0] if self.next_ids else new_id("pi")
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
            "customer": customer,
            "description": read_str(params, "description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "payment_method": pm["id"] if pm else None,
            "payment_method_options": payment_method_options(pm_types, options),
            "payment_method_types": pm_types,
            "receipt_email": read_str(params, "receipt_email"),
            "setup_future_usage": setup_future_usage,
            "statement_descriptor_suffix": read_str(params, "statement_descriptor_suffix"),
            "status": "requires_confirmation" if pm else "requires_payment_method",
        }
        refuse_unsupported(pi, pm_types)
        if self.next_ids:
            self.next_ids.pop(0)
        self.payment_intents[pi_id] = pi
        self._events.emit("payment_intent.created", pi, request)
        if confirm and pm:
            self._attempt(pi, pm["id"], params, request, off_session)
        return self._render(pi, params, request)

    def retrieve(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        check_known(params, {"client_secret", "expand"})
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        _check_client_secret(pi, params)
        return self._render(pi, params, request)

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
        capture, options = read_capture_method(params), read_payment_method_options(params)
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        _check_client_secret(pi, params)
        if pi["status"] not in CONFIRMABLE:
            raise _unexpected_state(pi, "confirm")
        pm = self._payment_method_of(params, pi["customer"])
        if pm is None and pi["payment_method"]:
            pm = self._methods.payment_methods[pi["payment_method"]]
        if pm is None:
            raise ApiError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. Update the "
                "PaymentIntent with a payment method and then confirm it again.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        if not pi["automatic_payment_methods"] and pm["type"] not in pi["payment_method_types"]:
            raise _incompatible(pm, pi["payment_method_types"])
        capture_settings = {
            "capture_method": capture or pi["capture_method"],
            "payment_method_options": payment_method_options([], options, pi["payment_method_options"]),
        }
        refuse_unsupported({**pi, **capture_settings}, [pm["type"]])
        pi.update(capture_settings)
        if params.get("receipt_email"):
            pi["receipt_email"] = params["receipt_email"]
        if "setup_future_usage" in params:
            pi["setup_future_usage"] = read_str(params, "setup_future_usage", SETUP_FUTURE_USAGE)
        self._attempt(pi, pm["id"], params, request, off_session)
        return self._render(pi, params, request)

    def cancel(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        check_known(params, {"cancellation_reason", "expand"})
        reason = read_str(params, "cancellation_reason", CANCELLATION_REASONS)
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        if pi["status"] not in CANCELABLE:
            raise _unexpected_state(pi, "cancel")
        if pi["status"] == "requires_capture":
            self._authorizations.release(pi)
        pi.update(status="canceled", canceled_at=self._clock.timestamp(), cancellation_reason=reason, next_action=None)
        self._events.emit("payment_intent.canceled", pi, request)
        return self._render(pi, params, request)

    def capture(self, pi_id: str, params: Obj, request: RequestRef) -> Obj:
        """https://docs.stripe.com/api/payment_intents/capture (authorizations.py)."""
        pi = find(self.payment_intents, "payment_intent", pi_id, "intent")
        self._authorizations.capture(pi, params, request)
        return self._render(pi, params, request)

    def retrieve_charge(self, charge_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find(self.charges, "charge", charge_id))

    # ----------------------------------------------------------------- the customer's and the bank's path
    def authenticated(self, pi: Obj, succeed: bool) -> None:
        self._attempts.authenticated(pi, succeed)

    def settle(self, pi_id: str, succeed: bool) -> None:
        pi = self.payment_intents.get(pi_id)
        if pi is None or pi["status"] != "processing":
            raise ValueError(f"{pi_id} is {pi and pi['status']}, expected processing")
        self._attempts.settle(pi, succeed)

    def still_processing(self, pi_id: str, charge_id: str) -> bool:
        pi = self.payment_intents.get(pi_id)
        return pi is not None and pi["status"] == "processing" and pi["latest_charge"] == charge_id

    # ----------------------------------------------------------------- helpers
    def _payment_method_of(self, params: Obj, customer: str | None) -> Obj | None:
        """The PaymentMethod a create or confirm names (`payment_method` or new `payment_method_data`)."""
        pm_id, data = read_str(params, "payment_method"), params.get("payment_method_data")
        if pm_id and data is not None:
            raise exclusive("payment_method", "payment_method_data")
        if data is not None:
            if not isinstance(data, dict):
                raise Rejected(400, "Invalid hash", param="payment_method_data")
            return self._methods.from_card_details(data, "payment_method_data")
        if not pm_id:
            return None
        pm = self._methods.resolve(pm_id)
        self._methods.check_usable(pm, customer)
        return pm

    def _attempt(self, pi: Obj, pm_id: str, params: Obj, request: RequestRef, off_session: bool) -> None:
        try:
            self._attempts.attempt(
                pi,
                pm_id,
                request,
                off_session=off_session,
                return_url=read_str(params, "return_url"),
                use_stripe_sdk=read_bool(params, "use_stripe_sdk"),
            )
        except ApiError as declined:
            if request.publishable and "payment_intent" in declined.error:
                declined.error["payment_intent"] = self._render(pi, params, request)
            raise

    def _render(self, pi: Obj, params: Obj, request: RequestRef) -> Obj:
        out = snapshot(pi)
        if request.publishable:
            return {name: out[name] for name in PUBLISHABLE_FIELDS}
        if "latest_charge" in (params.get("expand") or ()) and pi["latest_charge"]:
            out["latest_charge"] = snapshot(self.charges[pi["latest_charge"]])
        return out


def _check_client_secret(pi: Obj, params: Obj) -> None:
    secret = params.get("client_secret")
    if secret is not None and not (isinstance(secret, str) and hmac.compare_digest(secret, pi["client_secret"])):
        raise ApiError(
            400,
            "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
            code="payment_intent_invalid_parameter",
            param="client_secret",
        )


def _unexpected_state(pi: Obj, action: str) -> ApiError:
    message = f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}."
    if action == "cancel":
        message += f" Only a PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}."
    return ApiError(400, message, code="payment_intent_unexpected_state", payment_intent=snapshot(pi))


def _incompatible(pm: Obj, types: list[str]) -> ApiError:
    return ApiError(
        400,
        f"The PaymentMethod provided ({pm['type']}) is not allowed for this PaymentIntent. "
        f"Allowed types: {', '.join(types)}.",
        code="payment_intent_incompatible_payment_method",
        param="payment_method",
    )
