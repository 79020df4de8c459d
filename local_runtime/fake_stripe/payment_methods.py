"""PaymentMethods (https://docs.stripe.com/api/payment_methods) as objects, and when a payment may use one.

- `POST /v1/payment_methods` with type=card and one of Stripe's test card numbers
  (https://docs.stripe.com/api/payment_methods/create, https://docs.stripe.com/testing); a publishable key may
  call it, as Stripe.js does. A number that fails the Luhn check is `incorrect_number`, one that is not a
  test card is declined as a live card in test mode (https://docs.stripe.com/testing: "you can't use real
  card details").
- A test PaymentMethod id (`pm_card_visa`, ...) names no object: each use mints a new PaymentMethod with that
  card's behaviour, so the PaymentIntent, the attach answer and the charge carry a fresh `pm_...` id
  (https://docs.stripe.com/testing?testing-method=payment-methods). That is why aliases hide reuse bugs.
- Single use unless saved: a PaymentMethod used in a payment without a Customer "may not be used again"
  (400 invalid_request_error, no code; the message as Stripe sends it, quoted in public reports such as
  https://github.com/liberapay/liberapay.com/issues/2686), and cannot be attached afterwards. One attached to a
  Customer (https://docs.stripe.com/api/payment_methods/attach) may pay again, but only for that Customer
  (https://docs.stripe.com/payments/save-and-reuse).
- Set up for future payments: a PaymentIntent with `setup_future_usage` saves the card to its Customer when it
  succeeds (https://docs.stripe.com/payments/save-during-payment); only such a card counts as set up for the
  off-session rules of 4000002500003155.
"""

import re
import time

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.customers import Customers
from local_runtime.fake_stripe.errors import ApiError, Rejected, find, missing
from local_runtime.fake_stripe.forms import check_known, read_metadata, read_str, to_integer
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.sandbox import TEST_CARDS, TEST_PAYMENT_METHODS, TestPaymentMethod

CARD_PARAMS = {"number", "exp_month", "exp_year", "cvc"}
BILLING_PARAMS = {"address", "email", "name", "phone"}
CREATE_PARAMS = {"type", "card", "billing_details", "metadata", "expand"}

USED_WITHOUT_CUSTOMER = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with "
    "a connected account without Customer attachment, or was detached from a Customer. It may not be used again. "
    "To use a PaymentMethod multiple times, you must attach it to a Customer first."
)
ATTACH_AFTER_USE = (
    "This PaymentMethod was previously used without being attached to a Customer or was detached from a "
    "Customer, and may not be used again."
)
LIVE_CARD = (
    "Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid "
    "test cards, visit: https://stripe.com/docs/testing."
)


class PaymentMethods:
    def __init__(self, clock: Clock, customers: Customers) -> None:
        self._clock, self._customers = clock, customers
        self.payment_methods: dict[str, Obj] = {}
        self._behaviour: dict[str, TestPaymentMethod] = {}
        self._spent: set[str] = set()  # used in a payment while attached to no Customer
        self._set_up: set[str] = set()  # saved by a PaymentIntent with setup_future_usage

    # ----------------------------------------------------------------- endpoints
    def create(self, params: Obj, request: RequestRef) -> Obj:
        return snapshot(self.from_card_details(params, "card"))

    def retrieve(self, pm_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(self.resolve(pm_id, "id"))

    def customer(self, customer_id: str) -> Obj:
        """The Customer a payment names: 400 `resource_missing` for one this account does not have."""
        return self._customers.find(customer_id)

    def attach(self, pm_id: str, params: Obj, request: RequestRef) -> Obj:
        check_known(params, {"customer", "expand"})
        customer = read_str(params, "customer")
        if not customer:
            raise missing("customer")
        self._customers.find(customer)
        pm = self.resolve(pm_id, "id")
        if pm["id"] in self._spent:
            raise ApiError(400, ATTACH_AFTER_USE, param="payment_method")
        if pm["customer"] not in (None, customer):
            raise ApiError(400, "The payment method you provided has already been attached to a customer.")
        pm["customer"] = customer
        return snapshot(pm)

    # ----------------------------------------------------------------- for payments
    def from_card_details(self, params: Obj, param: str) -> Obj:
        """A new card PaymentMethod from `type` and `card[...]` (the create endpoint, `payment_method_data`)."""
        check_known(params, CREATE_PARAMS, {"card": CARD_PARAMS, "billing_details": BILLING_PARAMS})
        kind = read_str(params, "type")
        if not kind:
            raise missing(f"{param}[type]" if param != "card" else "type")
        if kind != "card":
            message = f"The fake creates only card PaymentMethods; use a test PaymentMethod id for {kind}."
            raise Rejected(400, message, code="parameter_invalid_string", param="type")
        card = params.get("card")
        if not isinstance(card, dict):
            raise missing("card")
        for name in ("number", "exp_month", "exp_year"):
            if not card.get(name):
                raise missing(f"card[{name}]")
        number = re.sub(r"[\s-]", "", str(card["number"]))
        month = to_integer(card["exp_month"], "exp_month")
        year = to_integer(card["exp_year"], "exp_year")
        if not (number.isdigit() and _luhn_ok(number)):
            raise ApiError(402, "Your card number is incorrect.", type="card_error", code="incorrect_number",
                           param="number")  # fmt: skip
        if not 1 <= month <= 12:
            raise ApiError(402, "Your card's expiration month is invalid.", type="card_error",
                           code="invalid_expiry_month", param="exp_month")  # fmt: skip
        if year < 100:
            year += 2000
        now = time.gmtime(self._clock.now())
        if (year, month) < (now.tm_year, now.tm_mon):
            raise ApiError(402, "Your card's expiration year is invalid.", type="card_error",
                           code="invalid_expiry_year", param="exp_year")  # fmt: skip
        if number not in TEST_CARDS:
            raise ApiError(402, LIVE_CARD, type="card_error", code="card_declined", decline_code="live_mode_test_card")
        billing = params.get("billing_details") if isinstance(params.get("billing_details"), dict) else {}
        return self._add(TEST_CARDS[number], read_metadata(params), billing, month, year)

    def resolve(self, pm_id: str, param: str = "payment_method") -> Obj:
        """The PaymentMethod with this id; a test PaymentMethod id mints a new one each time."""
        if pm_id in TEST_PAYMENT_METHODS:
            return self._add(TEST_PAYMENT_METHODS[pm_id], {}, {}, 12, time.gmtime(self._clock.now()).tm_year + 3)
        return find(self.payment_methods, "PaymentMethod", pm_id, param)

    def check_usable(self, pm: Obj, customer: str | None) -> None:
        """Refuse a PaymentMethod this payment may not use, as Stripe does (see the module docstring)."""
        if pm["customer"] is None and pm["id"] in self._spent:
            raise ApiError(400, USED_WITHOUT_CUSTOMER, param="payment_method")
        if pm["customer"] is not None and pm["customer"] != customer:
            # Stripe's wording for a Customer that does not own the card; not checked for a payment without one.
            raise ApiError(
                400,
                f"The customer does not have a payment method with the ID {pm['id']}. The payment method must be "
                "attached to the customer.",
                param="payment_method",
            )

    def use(self, pm_id: str) -> None:
        if self.payment_methods[pm_id]["customer"] is None:
            self._spent.add(pm_id)

    def save(self, pm_id: str, customer: str) -> None:
        """setup_future_usage on a successful payment: attach the card to the Customer, set up."""
        self.payment_methods[pm_id]["customer"] = customer
        self._spent.discard(pm_id)
        self._set_up.add(pm_id)

    def behaviour(self, pm_id: str) -> TestPaymentMethod:
        return self._behaviour[pm_id]

    def is_set_up(self, pm_id: str) -> bool:
        return pm_id in self._set_up

    def _add(self, test: TestPaymentMethod, metadata: Obj, billing: Obj, month: int, year: int) -> Obj:
        pm: Obj = {
            "id": new_id("pm"),
            "object": "payment_method",
            "billing_details": {
                "address": billing.get("address") or None,
                "email": billing.get("email"),
                "name": billing.get("name"),
                "phone": billing.get("phone"),
            },
            "created": self._clock.timestamp(),
            "customer": None,
            "livemode": False,
            "metadata": metadata,
            "type": test.type,
            test.type: _details(test, month, year),
        }
        self.payment_methods[pm["id"]] = pm
        self._behaviour[pm["id"]] = test
        return pm


def _details(test: TestPaymentMethod, month: int, year: int) -> Obj:
    if test.type != "card":
        return {"last4": test.last4}
    return {
        "brand": test.brand,
        "country": "US",
        "exp_month": month,
        "exp_year": year,
        "funding": "credit",
        "last4": test.last4,
        "three_d_secure_usage": {"supported": True},
    }


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0
