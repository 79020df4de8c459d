"""Customers at the checkout page, each to the end the status API reports: a card that pays; 3-D Secure
completed; 3-D Secure failed, then another card; a decline, then another card (the last two pay the same
PaymentIntent on the workflow's second attempt); two declines, which end the order; and an order the shop's
server confirmed with a card it had, which the bank asks the customer to authenticate on its own page; and a
mistyped card, which never reaches the bank."""

import uuid

import pytest

from local_runtime.scenarios import order_input

pytestmark = pytest.mark.e2e

PAYS = "4242 4242 4242 4242"
NEEDS_3D_SECURE = "4000 0025 0000 3155"
DECLINED = "4000 0000 0000 0002"
CART_AMOUNT = 1500  # the page's cart as it comes: one of each product, at the shop's prices


def assert_paid_once(checkout, order_id: str, *, attempt: int, amount: int = CART_AMOUNT) -> None:
    """The order as the merchant API reports it, and at Stripe: one PaymentIntent, paid."""
    order = checkout.merchant_api.payment(order_id)
    assert (order["status"], order["amount"], order["attempt"]) == ("fulfilled", amount, attempt)
    assert order["payment"]["status"] == "succeeded" and "clientSecret" not in order["payment"]
    assert [pi["status"] for pi in checkout.payment_intents_of(order_id)] == ["succeeded"]


def test_a_card_that_pays(customer, checkout) -> None:
    order_id = customer.check_out()

    customer.pay_with(PAYS)

    customer.sees("Paid: order fulfilled")
    assert_paid_once(checkout, order_id, attempt=1)
    assert customer.errors == []


def test_3d_secure_completed(customer, checkout) -> None:
    order_id = customer.check_out()

    customer.pay_with(NEEDS_3D_SECURE)
    customer.answer_3d_secure(complete=True)

    customer.sees("Paid: order fulfilled")
    assert_paid_once(checkout, order_id, attempt=1)
    assert customer.errors == []


def test_3d_secure_failed_then_another_card(customer, checkout) -> None:
    order_id = customer.check_out()

    customer.pay_with(NEEDS_3D_SECURE)
    customer.answer_3d_secure(complete=False)
    customer.sees("Your bank could not confirm the payment (3-D Secure failed). Try another card.")
    customer.screenshot("3d-secure-failed")
    customer.pay_with(PAYS)

    customer.sees("Paid: order fulfilled")
    assert_paid_once(checkout, order_id, attempt=2)
    assert customer.errors == []


def test_declined_then_another_card(customer, checkout) -> None:
    order_id = customer.check_out()

    customer.pay_with(DECLINED)
    customer.sees("Your card was declined. Try another card.")
    customer.screenshot("declined")
    customer.pay_with(PAYS)

    customer.sees("Paid: order fulfilled")
    assert_paid_once(checkout, order_id, attempt=2)
    assert customer.errors == []


def test_declined_on_every_attempt(customer, checkout) -> None:
    # MaxPaymentAttempts is 2 on the local stack
    order_id = customer.check_out()

    customer.pay_with(DECLINED)
    customer.sees("Try another card.")
    customer.pay_with(DECLINED)

    customer.sees("Payment failed: generic_decline: Your card was declined.")
    order = checkout.merchant_api.payment(order_id)
    assert (order["status"], order["attempt"], order["payment"]["status"]) == ("failed", 2, "canceled")
    assert [pi["status"] for pi in checkout.payment_intents_of(order_id)] == ["canceled"]
    assert customer.errors == []


def test_a_server_confirmed_payment_authenticated_on_the_banks_page(customer, checkout) -> None:
    # Given an order the shop's server confirmed with a card it had, which needs 3-D Secure
    order = order_input(f"order-{uuid.uuid4().hex}", "pm_card_authenticationRequired", (("MUG-BLUE", 2),))
    checkout.merchant_api.start_payment(order)

    customer.open_order(order["orderId"])
    customer.sees("Your bank asks you to confirm this payment.")
    customer.screenshot("asked-to-authenticate")
    customer.page.get_by_role("button", name="Confirm with your bank").click()
    customer.answer_3d_secure_page(complete=True)

    customer.sees("Paid: order fulfilled")
    assert customer.page.url == f"{checkout.url}?orderId={order['orderId']}"
    assert_paid_once(checkout, order["orderId"], attempt=1, amount=order["amount"])
    assert customer.errors == []


def test_a_mistyped_card_is_caught_before_anything_reaches_the_bank(customer, checkout) -> None:
    order_id = customer.check_out()

    customer.pay_with("4242 4242 4242 4241")
    customer.sees("Your card number is invalid.")
    customer.pay_with(PAYS)

    customer.sees("Paid: order fulfilled")
    assert_paid_once(checkout, order_id, attempt=1)
    assert customer.errors == []
