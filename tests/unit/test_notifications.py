"""notifications: what the customer reads, and sending it through SES (moto sesv2)."""

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from payments import steps
from payments.errors import AwsUnavailable
from payments.notifications import Mailer, compose, format_amount
from payments.orders import Order, parse_order
from tests.conftest import sample_order
from tests.unit._support import client_error

SENDER = "shop@example.com"


@pytest.fixture
def order() -> Order:
    return parse_order(sample_order())  # 2500 usd: 2 x MUG-BLUE, 1 x TEA-EARL


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        pytest.param(2500, "usd", "25.00 USD", id="usd"),
        pytest.param(5, "eur", "0.05 EUR", id="eur-cents"),
        pytest.param(99_999_999, "gbp", "999999.99 GBP", id="gbp-max"),
        pytest.param(5000, "jpy", "5000 JPY", id="jpy-zero-decimal"),
    ],
)
def test_format_amount(amount: int, currency: str, text: str) -> None:
    assert format_amount(amount, currency) == text


def test_receipt_lists_items_and_total(order: Order) -> None:
    message = compose("receipt", order, {})

    assert message.subject == "Receipt for order order-1001"
    assert "25.00 USD" in message.body
    assert "2 x MUG-BLUE" in message.body
    assert "1 x TEA-EARL" in message.body


def test_receipt_in_yen_has_no_decimals() -> None:
    order = parse_order(
        sample_order(amount=5000, currency="JPY", items=[{"sku": "MUG", "quantity": 2, "unitAmount": 2500}])
    )

    body = compose("receipt", order, {}).body

    assert "5000 JPY" in body
    assert "50.00" not in body


def test_a_saved_card_retried_off_session_says_we_will_try_again(order: Order) -> None:
    details = {"willRetry": True, "reason": "insufficient_funds", "offSession": True, "retryable": True}

    message = compose("payment_failed", order, details)

    assert "we will try again" in message.subject
    assert "25.00 USD" in message.body
    assert "insufficient_funds" in message.body


def test_a_decline_the_customer_can_pay_again_links_the_checkout_page(order: Order) -> None:
    url = "https://shop.example/checkout?orderId=order-1001"
    details = {"willRetry": True, "reason": "generic_decline", "offSession": False, "payUrl": url}

    message = compose("payment_failed", order, details)

    assert "you can try again" in message.subject
    assert url in message.body
    assert "we will try" not in message.body


def test_payment_failed_without_retry(order: Order) -> None:
    message = compose("payment_failed", order, {"willRetry": False, "reason": "generic_decline"})

    assert message.subject == "Payment for order order-1001 failed"
    assert "try again" not in message.body
    assert "(generic_decline)" in message.body


def test_payment_failed_without_reason_uses_a_default(order: Order) -> None:
    assert "(the payment did not go through)" in compose("payment_failed", order, {}).body


def test_timed_out(order: Order) -> None:
    message = compose("timed_out", order, {})

    assert "order-1001" in message.subject
    assert "in time" in message.body
    assert "25.00 USD" in message.body


def test_refunded_gives_the_reason_and_amount(order: Order) -> None:
    message = compose("refunded", order, {"reason": "not enough stock for SKU MUG-BLUE"})

    assert message.subject == "Order order-1001 refunded"
    assert "not enough stock for SKU MUG-BLUE" in message.body
    assert "refunded 25.00 USD" in message.body


@pytest.mark.parametrize("kind", ["shipped", "", "RECEIPT"])
def test_unknown_kind_raises(order: Order, kind: str) -> None:
    with pytest.raises(ValueError, match="unknown notification kind"):
        compose(kind, order, {})


def test_mailer_sends_through_sesv2(aws: None, boto_session: boto3.Session, order: Order) -> None:
    client = boto_session.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)

    message_id = Mailer(client, SENDER).send("ada@example.com", compose("receipt", order, {}))

    assert isinstance(message_id, str)
    assert message_id


def test_notify_customer_sends_the_receipt(aws: None, boto_session: boto3.Session, order: Order) -> None:
    client = boto_session.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)

    result = steps.notify_customer("receipt", order, {}, mailer=Mailer(client, SENDER))

    assert result["sent"] is True
    assert result["messageId"]


class _MustNotSend:
    def send(self, *_: Any) -> str:
        raise AssertionError("nothing should be sent")


def test_notify_customer_without_mailer_sends_nothing(order: Order) -> None:
    assert steps.notify_customer("receipt", order, {}, mailer=None) == {"sent": False}


def test_notify_customer_without_email_address_sends_nothing() -> None:
    order = parse_order(sample_order(customer={"id": "cus_1"}))

    assert steps.notify_customer("receipt", order, {}, mailer=_MustNotSend()) == {"sent": False}  # type: ignore[arg-type]


class _FailingSes:
    def __init__(self, code: str, http_status: int) -> None:
        self.error = client_error(code, "SendEmail", http_status)

    def send_email(self, **_: Any) -> None:
        raise self.error


def test_mailer_throttled_raises_aws_unavailable(order: Order) -> None:
    with pytest.raises(AwsUnavailable, match="SES"):
        Mailer(_FailingSes("TooManyRequestsException", 429), SENDER).send(
            "ada@example.com", compose("receipt", order, {})
        )


def test_mailer_rejected_message_is_re_raised(order: Order) -> None:
    with pytest.raises(ClientError) as caught:
        Mailer(_FailingSes("MessageRejected", 400), SENDER).send("ada@example.com", compose("receipt", order, {}))

    assert caught.value.response["Error"]["Code"] == "MessageRejected"
