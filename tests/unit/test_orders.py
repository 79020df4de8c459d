"""orders.parse_order: every rejection names the field and why; valid orders normalise and round-trip."""

from typing import Any

import pytest

from payments.errors import InvalidOrder
from payments.orders import MAX_LINE_ITEMS, STRIPE_MAX_AMOUNT, parse_order
from tests.conftest import sample_order

_MISSING = object()


def order_with(**overrides: Any) -> dict[str, Any]:
    """sample_order with overrides; an override of _MISSING removes the key."""
    order = sample_order()
    for key, value in overrides.items():
        if value is _MISSING:
            order.pop(key, None)
        else:
            order[key] = value
    return order


def one_item(**item: Any) -> list[dict[str, Any]]:
    return [{"sku": "MUG-BLUE", "quantity": 1, "unitAmount": 2500, **item}]


def many_items(count: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{n:03d}", "quantity": 1} for n in range(count)]


REJECTIONS = [
    # orderId
    pytest.param(order_with(orderId=_MISSING), "orderId", "is required", id="order-id-missing"),
    pytest.param(order_with(orderId="order 1001"), "orderId", "1-64 characters", id="order-id-with-space"),
    pytest.param(order_with(orderId="x" * 65), "orderId", "1-64 characters", id="order-id-too-long"),
    pytest.param(order_with(orderId=""), "orderId", "1-64 characters", id="order-id-empty"),
    pytest.param(order_with(orderId=1001), "orderId", "1-64 characters", id="order-id-not-string"),
    # currency
    pytest.param(order_with(currency=_MISSING), "currency", "is required", id="currency-missing"),
    pytest.param(order_with(currency="xyz"), "currency", "'xyz' is not supported", id="currency-unsupported"),
    pytest.param(order_with(currency=840), "currency", "is not supported", id="currency-not-string"),
    # amount
    pytest.param(order_with(amount=_MISSING), "amount", "is required", id="amount-missing"),
    pytest.param(order_with(amount=0), "amount", "must be positive", id="amount-zero"),
    pytest.param(order_with(amount=-2500), "amount", "must be positive", id="amount-negative"),
    pytest.param(order_with(amount=25.0), "amount", "must be an integer", id="amount-float"),
    pytest.param(order_with(amount=True), "amount", "must be an integer", id="amount-bool"),
    pytest.param(order_with(amount="2500"), "amount", "must be an integer", id="amount-string"),
    pytest.param(
        order_with(amount=STRIPE_MAX_AMOUNT + 1), "amount", "over Stripe's limit of 99999999", id="amount-over-max"
    ),
    pytest.param(
        order_with(amount=49, items=one_item(unitAmount=49)),
        "amount",
        "under Stripe's minimum of 50 usd",
        id="amount-under-usd-minimum",
    ),
    pytest.param(
        order_with(amount=299, currency="SEK", items=one_item(unitAmount=299)),
        "amount",
        "under Stripe's minimum of 300 sek",
        id="amount-under-sek-minimum",
    ),
    # customer
    pytest.param(order_with(customer=_MISSING), "customer", "is required", id="customer-missing"),
    pytest.param(order_with(customer="cus_Q1w2E3r4"), "customer", "is required", id="customer-not-object"),
    pytest.param(order_with(customer={}), "customer", "needs an id or an email", id="customer-empty"),
    pytest.param(
        order_with(customer={"id": None, "email": None}),
        "customer",
        "needs an id or an email",
        id="customer-null-id-and-email",
    ),
    pytest.param(order_with(customer={"id": "acct_123"}), "customer.id", "cus_", id="customer-id-not-cus"),
    pytest.param(order_with(customer={"id": "  "}), "customer.id", "non-empty string", id="customer-id-blank"),
    pytest.param(order_with(customer={"id": 42}), "customer.id", "non-empty string", id="customer-id-not-string"),
    pytest.param(
        order_with(customer={"email": "ada.example.com"}), "customer.email", "not an e-mail", id="email-no-at"
    ),
    pytest.param(
        order_with(customer={"email": "ada lovelace@example.com"}),
        "customer.email",
        "not an e-mail",
        id="email-with-space",
    ),
    pytest.param(
        order_with(customer={"id": "cus_1", "email": "ada@localhost"}),
        "customer.email",
        "not an e-mail",
        id="email-no-domain-dot",
    ),
    # paymentMethod
    pytest.param(order_with(paymentMethod="card_123"), "paymentMethod", "pm_", id="payment-method-not-pm"),
    pytest.param(order_with(paymentMethod=""), "paymentMethod", "non-empty string", id="payment-method-empty"),
    # items
    pytest.param(order_with(items=_MISSING), "items", "non-empty list", id="items-missing"),
    pytest.param(order_with(items=[]), "items", "non-empty list", id="items-empty"),
    pytest.param(order_with(items={"sku": "MUG-BLUE"}), "items", "non-empty list", id="items-not-list"),
    pytest.param(order_with(items=["MUG-BLUE"]), "items[0]", "must be an object", id="item-not-object"),
    pytest.param(
        order_with(items=[{"quantity": 1, "unitAmount": 2500}]), "items[0].sku", "is required", id="item-sku-missing"
    ),
    pytest.param(order_with(items=one_item(sku="  ")), "items[0].sku", "is required", id="item-sku-blank"),
    pytest.param(order_with(items=one_item(quantity=0)), "items[0].quantity", "positive integer", id="qty-zero"),
    pytest.param(order_with(items=one_item(quantity=-1)), "items[0].quantity", "positive integer", id="qty-negative"),
    pytest.param(order_with(items=one_item(quantity=1.5)), "items[0].quantity", "positive integer", id="qty-float"),
    pytest.param(order_with(items=one_item(quantity="1")), "items[0].quantity", "positive integer", id="qty-string"),
    pytest.param(order_with(items=one_item(quantity=True)), "items[0].quantity", "positive integer", id="qty-bool"),
    pytest.param(
        order_with(items=[{"sku": "MUG-BLUE", "unitAmount": 2500}]),
        "items[0].quantity",
        "positive integer",
        id="qty-missing",
    ),
    pytest.param(
        order_with(items=one_item(unitAmount=-1)),
        "items[0].unitAmount",
        "non-negative integer",
        id="unit-amount-negative",
    ),
    pytest.param(
        order_with(items=one_item(unitAmount=25.5)),
        "items[0].unitAmount",
        "non-negative integer",
        id="unit-amount-float",
    ),
    pytest.param(
        order_with(items=[{"sku": "MUG-BLUE", "quantity": 1, "unitAmount": 1000}, {"sku": "TEA", "quantity": "x"}]),
        "items[1].quantity",
        "positive integer",
        id="second-item-bad-quantity",
    ),
    pytest.param(
        order_with(
            items=[
                {"sku": "MUG-BLUE", "quantity": 1, "unitAmount": 1500},
                {"sku": "MUG-BLUE", "quantity": 1, "unitAmount": 1000},
            ]
        ),
        "items",
        "same SKU twice",
        id="duplicate-sku",
    ),
    pytest.param(
        order_with(amount=2600), "items", "line totals add up to 2500, not the amount 2600", id="totals-mismatch"
    ),
    pytest.param([sample_order()], "input", "JSON object", id="input-not-object"),
    # One DynamoDB transaction fulfils an order: its own update and a decrement per line, at most 100
    pytest.param(
        order_with(amount=5000, items=many_items(MAX_LINE_ITEMS + 1)),
        "items",
        "has 100 line items; at most 99 fit in one fulfilment transaction",
        id="too-many-lines-to-fulfil",
    ),
    pytest.param(order_with(items=one_item(sku="S" * 65)), "items[0].sku", "longer than 64", id="sku-too-long"),
    pytest.param(order_with(customer={"id": "cus_" + "x" * 252}), "customer.id", "longer than 255", id="id-too-long"),
]


@pytest.mark.parametrize(("raw", "field", "fragment"), REJECTIONS)
def test_rejection_names_field_and_reason(raw: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_order(raw)

    assert caught.value.field == field
    assert fragment in caught.value.reason
    assert str(caught.value) == f"{field}: {caught.value.reason}"  # the cause the Fail state shows


def test_valid_order_is_parsed() -> None:
    order = parse_order(sample_order())

    assert order.order_id == "order-1001"
    assert (order.amount, order.currency) == (2500, "usd")
    assert (order.customer_id, order.customer_email) == ("cus_Q1w2E3r4", "ada@example.com")
    assert order.payment_method == "pm_card_visa"
    assert [(i.sku, i.quantity, i.unit_amount) for i in order.items] == [("MUG-BLUE", 2, 1000), ("TEA-EARL", 1, 500)]


def test_upper_case_currency_is_normalised_to_lower() -> None:
    assert parse_order(sample_order(currency="USD")).currency == "usd"


def test_minimum_is_checked_in_the_normalised_currency() -> None:
    # Given 49 JPY written in capitals: under JPY's minimum of 50
    with pytest.raises(InvalidOrder, match="minimum of 50 jpy"):
        parse_order(sample_order(currency="JPY", amount=49, items=one_item(unitAmount=49)))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"amount": 50, "items": one_item(unitAmount=50)}, id="exactly-usd-minimum"),
        pytest.param({"amount": STRIPE_MAX_AMOUNT, "items": one_item(unitAmount=STRIPE_MAX_AMOUNT)}, id="exactly-max"),
        pytest.param({"orderId": "A" * 64}, id="order-id-64-chars"),
        pytest.param({"orderId": "ord_2024-01_abc"}, id="order-id-underscore-dash"),
        pytest.param({"customer": {"email": "ada@example.com"}}, id="email-only-customer"),
        pytest.param({"customer": {"id": "cus_1"}}, id="id-only-customer"),
        pytest.param({"paymentMethod": None}, id="no-payment-method"),
        pytest.param({"amount": 9999, "items": [{"sku": "MUG-BLUE", "quantity": 1}]}, id="no-unit-amounts-no-sum"),
        pytest.param({"amount": 5000, "items": many_items(MAX_LINE_ITEMS)}, id="as-many-lines-as-fulfilment-takes"),
        pytest.param({"items": one_item(sku="S" * 64)}, id="sku-64-chars"),
    ],
)
def test_boundary_orders_are_accepted(overrides: dict[str, Any]) -> None:
    order = parse_order(sample_order(**overrides))

    assert order.order_id == sample_order(**overrides)["orderId"]


def test_whitespace_around_strings_is_trimmed() -> None:
    order = parse_order(
        sample_order(customer={"id": " cus_1 ", "email": " ada@example.com "}, items=one_item(sku=" MUG-BLUE "))
    )

    assert (order.customer_id, order.customer_email) == ("cus_1", "ada@example.com")
    assert order.items[0].sku == "MUG-BLUE"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(sample_order(), id="full"),
        pytest.param(sample_order(currency="USD"), id="upper-case-currency"),
        pytest.param(sample_order(customer={"email": "ada@example.com"}, paymentMethod=None), id="email-only"),
        pytest.param(sample_order(amount=700, items=[{"sku": "TEA", "quantity": 7}]), id="no-unit-amount"),
    ],
)
def test_valid_order_round_trips_through_to_dict(raw: dict[str, Any]) -> None:
    order = parse_order(raw)

    assert parse_order(order.to_dict()) == order
