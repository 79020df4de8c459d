"""Which capture method a payment uses, and the payment methods that cannot be captured by hand.

- A PaymentIntent's `capture_method` is `automatic`, `automatic_async` (the default) or `manual`, which places a
  hold on the customer's funds to capture later ("Place a hold on the funds when the customer authorizes the
  payment, but don't capture the funds until later. (Not all payment methods support this.)",
  https://docs.stripe.com/api/payment_intents/object#payment_intent_object-capture_method; the hold, its capture
  and its expiry are in authorizations.py).
- `payment_method_options[card][capture_method]=manual` does it for cards only: "If provided, this parameter
  overrides the behavior of the top-level capture_method for this payment method type when finalizing the payment
  with this payment method type" (https://docs.stripe.com/api/payment_intents/create#create_payment_intent-payment_method_options-card-capture_method);
  an empty value unsets it. The bank debits have no such option (stripe-python 16's
  `PaymentIntentCreateParamsPaymentMethodOptionsSepaDebit` and `...UsBankAccount` have no `capture_method`): a
  SEPA or ACH debit on such a PaymentIntent is captured automatically, and `payment_method_options[sepa_debit]
  [capture_method]` is an unknown parameter.
- Of the payment methods the fake models, only cards can be held ("Place a hold on an eligible payment method",
  https://docs.stripe.com/payments/place-a-hold-on-a-payment-method); SEPA Direct Debit and ACH Direct Debit can
  not. Stripe refuses a PaymentIntent whose top-level `capture_method=manual` names one of them with a 400
  `invalid_request_error`, "The following payment method types ["ideal"] can only be used with PaymentIntents that
  have capture_method=automatic. Please retry by creating a PaymentIntent with capture_method=automatic." (the
  wording as Stripe sends it, quoted in public integrations' tests, for instance for iDEAL and Sofort; the
  Checkout changelog, https://docs.stripe.com/changelog/clover/2025-09-30/checkout-capture-method-per-payment-method,
  names the same limit: manual capture "would ... cause errors when explicitly requested"). The fake answers it
  when such a type is in `payment_method_types` or is the PaymentMethod being attached or confirmed.
"""

import json

from local_runtime.fake_stripe.errors import ApiError, Rejected
from local_runtime.fake_stripe.forms import read_str
from local_runtime.fake_stripe.objects import Obj

CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
DEFAULT_CAPTURE_METHOD = "automatic_async"
MANUAL_CAPTURE_TYPES = frozenset({"card"})  # of card, sepa_debit and us_bank_account
# What `payment_method_options[<type>]` may hold in the fake, per payment method type.
OPTION_PARAMS: dict[str, tuple[str, ...]] = {"card": ("capture_method",), "sepa_debit": (), "us_bank_account": ()}
# The card options Stripe shows on a PaymentIntent by default (as in Stripe's own error bodies for card payments).
CARD_DEFAULTS: Obj = {
    "installments": None,
    "mandate_options": None,
    "network": None,
    "request_three_d_secure": "automatic",
}


def read_capture_method(params: Obj) -> str | None:
    return read_str(params, "capture_method", CAPTURE_METHODS)


def read_payment_method_options(params: Obj) -> dict[str, Obj]:
    """`payment_method_options[...]` as given: {type: {option: value}}, "" meaning unset. Unknown names are
    Stripe's 400 `parameter_unknown`, before the endpoint begins."""
    given = params.get("payment_method_options")
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise Rejected(400, "Invalid hash", param="payment_method_options")
    options: dict[str, Obj] = {}
    for kind, values in given.items():
        if kind not in OPTION_PARAMS:
            raise _unknown(f"payment_method_options[{kind}]")
        if values == "":
            options[kind] = {}
            continue
        if not isinstance(values, dict):
            raise Rejected(400, "Invalid hash", param=f"payment_method_options[{kind}]")
        for name, value in values.items():
            if name not in OPTION_PARAMS[kind]:
                raise _unknown(f"payment_method_options[{kind}][{name}]")
            if value not in ("", "manual"):
                param = f"payment_method_options[{kind}][{name}]"
                raise Rejected(400, f"Invalid {param}: must be one of manual", param=param)
        options[kind] = dict(values)
    return options


def payment_method_options(types: list[str], given: dict[str, Obj], current: Obj | None = None) -> Obj:
    """The PaymentIntent's `payment_method_options`: one entry per payment method type, the card's with Stripe's
    defaults, then what was given (an empty `capture_method` unsets it)."""
    options: Obj = {kind: dict(CARD_DEFAULTS) if kind == "card" else {} for kind in types}
    for kind, values in (current or {}).items():
        options.setdefault(kind, {}).update(values)
    for kind, values in given.items():
        entry = options.setdefault(kind, dict(CARD_DEFAULTS) if kind == "card" else {})
        for name, value in values.items():
            if value == "":
                entry.pop(name, None)
            else:
                entry[name] = value
    return options


def capture_method_for(pi: Obj, payment_method_type: str) -> str:
    """The capture method a payment with this type of PaymentMethod uses: its type's option, else the top level."""
    option = (pi["payment_method_options"].get(payment_method_type) or {}).get("capture_method")
    return option or pi["capture_method"]


def refuse_unsupported(pi: Obj, types: list[str]) -> None:
    """Stripe's 400 for a PaymentIntent that would hold funds on payment methods that cannot be held."""
    unsupported = [
        kind for kind in types if kind not in MANUAL_CAPTURE_TYPES and capture_method_for(pi, kind) == "manual"
    ]
    if unsupported:
        raise ApiError(
            400,
            f"The following payment method types {json.dumps(unsupported)} can only be used with PaymentIntents "
            "that have capture_method=automatic. Please retry by creating a PaymentIntent with "
            "capture_method=automatic.",
        )


def _unknown(name: str) -> Rejected:
    return Rejected(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
