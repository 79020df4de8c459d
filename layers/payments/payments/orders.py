"""The order a payment is for, validated from the workflow's start input."""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from payments.errors import InvalidOrder

STRIPE_MAX_AMOUNT = 99_999_999
# Stripe's minimum charge per currency, in the smallest currency unit.
MINIMUM_AMOUNT = {
    "usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50,
    "jpy": 50, "sek": 300, "nok": 300, "dkk": 250, "pln": 200, "nzd": 50,
}  # fmt: skip
SUPPORTED_CURRENCIES = frozenset(MINIMUM_AMOUNT)
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # also a valid Step Functions execution name
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Fulfilment is one DynamoDB transaction: the order's own update and a stock decrement per line item,
# at most 100 items (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
# An order that could not be fulfilled must never be charged, so it is refused before anything else.
MAX_LINE_ITEMS = 99
MAX_SKU_LENGTH = 64
MAX_TEXT_LENGTH = 255  # ids and the e-mail address


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_amount: int | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    amount: int
    currency: str
    customer_id: str | None
    customer_email: str | None
    payment_method: str | None
    items: tuple[LineItem, ...]
    off_session: bool = False  # a saved card charged while the customer is away (merchant-initiated)

    def to_dict(self) -> dict[str, Any]:
        """The normalized order as the state machine carries it (same field names as the start input)."""
        return {
            "orderId": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "customer": {"id": self.customer_id, "email": self.customer_email},
            "paymentMethod": self.payment_method,
            "offSession": self.off_session,
            "items": [{"sku": i.sku, "quantity": i.quantity, "unitAmount": i.unit_amount} for i in self.items],
        }


def checkout_url(page_url: str, order_id: str) -> str | None:
    """Where the customer pays, or authenticates, for an order: the checkout page, told which order."""
    if not page_url:
        return None
    separator = "&" if "?" in page_url else "?"
    return f"{page_url}{separator}{urlencode({'orderId': order_id})}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_str(raw: dict, key: str, field: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(field, "must be a non-empty string")
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidOrder(field, f"is longer than {MAX_TEXT_LENGTH} characters")
    return value.strip()


def parse_order(raw: Any) -> Order:
    """Validate a start input. Raises InvalidOrder naming the first bad field and why."""
    if not isinstance(raw, dict):
        raise InvalidOrder("input", "must be a JSON object")

    order_id = raw.get("orderId")
    if order_id is None:
        raise InvalidOrder("orderId", "is required")
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        raise InvalidOrder("orderId", "must be 1-64 characters of letters, digits, '-' or '_'")

    currency = raw.get("currency")
    if currency is None:
        raise InvalidOrder("currency", "is required")
    if not isinstance(currency, str) or currency.lower() not in SUPPORTED_CURRENCIES:
        supported = ", ".join(sorted(SUPPORTED_CURRENCIES))
        raise InvalidOrder("currency", f"{currency!r} is not supported (use one of {supported})")
    currency = currency.lower()

    amount = raw.get("amount")
    if amount is None:
        raise InvalidOrder("amount", "is required")
    if not _is_int(amount):
        raise InvalidOrder("amount", f"must be an integer in the smallest currency unit, got {amount!r}")
    if amount <= 0:
        raise InvalidOrder("amount", f"must be positive, got {amount}")
    if amount > STRIPE_MAX_AMOUNT:
        raise InvalidOrder("amount", f"{amount} is over Stripe's limit of {STRIPE_MAX_AMOUNT}")
    if amount < MINIMUM_AMOUNT[currency]:
        raise InvalidOrder("amount", f"{amount} is under Stripe's minimum of {MINIMUM_AMOUNT[currency]} {currency}")

    customer = raw.get("customer")
    if not isinstance(customer, dict):
        raise InvalidOrder("customer", "is required: an object with an id and/or an email")
    customer_id = _optional_str(customer, "id", "customer.id")
    email = _optional_str(customer, "email", "customer.email")
    if customer_id is None and email is None:
        raise InvalidOrder("customer", "needs an id or an email")
    if customer_id is not None and not customer_id.startswith("cus_"):
        raise InvalidOrder("customer.id", "must be a Stripe customer id (cus_...)")
    if email is not None and not EMAIL.match(email):
        raise InvalidOrder("customer.email", "is not an e-mail address")

    payment_method = _optional_str(raw, "paymentMethod", "paymentMethod")
    if payment_method is not None and not payment_method.startswith("pm_"):
        raise InvalidOrder("paymentMethod", "must be a Stripe PaymentMethod id (pm_...)")

    off_session = raw.get("offSession", False)
    if not isinstance(off_session, bool):
        raise InvalidOrder("offSession", f"must be true or false, got {off_session!r}")
    if off_session and (customer_id is None or payment_method is None):
        raise InvalidOrder("offSession", "needs customer.id and a paymentMethod saved to that customer")

    return Order(
        order_id=order_id,
        amount=amount,
        currency=currency,
        customer_id=customer_id,
        customer_email=email,
        payment_method=payment_method,
        items=_parse_items(raw.get("items"), amount),
        off_session=off_session,
    )


def _parse_items(raw_items: Any, amount: int) -> tuple[LineItem, ...]:
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidOrder("items", "must be a non-empty list of line items")
    if len(raw_items) > MAX_LINE_ITEMS:
        raise InvalidOrder(
            "items", f"has {len(raw_items)} line items; at most {MAX_LINE_ITEMS} fit in one fulfilment transaction"
        )
    items = []
    for index, raw in enumerate(raw_items):
        field = f"items[{index}]"
        if not isinstance(raw, dict):
            raise InvalidOrder(field, "must be an object with sku and quantity")
        sku = raw.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise InvalidOrder(f"{field}.sku", "is required: a non-empty string")
        if len(sku.strip()) > MAX_SKU_LENGTH:
            raise InvalidOrder(f"{field}.sku", f"is longer than {MAX_SKU_LENGTH} characters")
        quantity = raw.get("quantity")
        if not _is_int(quantity) or quantity <= 0:
            raise InvalidOrder(f"{field}.quantity", f"must be a positive integer, got {quantity!r}")
        unit_amount = raw.get("unitAmount")
        if unit_amount is not None and (not _is_int(unit_amount) or unit_amount < 0):
            raise InvalidOrder(f"{field}.unitAmount", f"must be a non-negative integer, got {unit_amount!r}")
        items.append(LineItem(sku=sku.strip(), quantity=quantity, unit_amount=unit_amount))

    if len({item.sku for item in items}) != len(items):
        raise InvalidOrder("items", "lists the same SKU twice; combine the quantities")
    if all(item.unit_amount is not None for item in items):
        total = sum(item.quantity * (item.unit_amount or 0) for item in items)
        if total != amount:
            raise InvalidOrder("items", f"line totals add up to {total}, not the amount {amount}")
    return tuple(items)
