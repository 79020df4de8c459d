"""Customer e-mails: receipts and payment notices, sent through SES."""

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.aws_errors import is_transient
from payments.errors import AwsUnavailable
from payments.orders import Order

ZERO_DECIMAL = frozenset({"jpy"})


def format_amount(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def compose(kind: str, order: Order, details: dict[str, Any]) -> Message:
    total = format_amount(order.amount, order.currency)
    lines = "\n".join(f"  {item.quantity} x {item.sku}" for item in order.items)
    reason = details.get("reason") or "the payment did not go through"
    if kind == "receipt":
        return Message(f"Receipt for order {order.order_id}", f"Thank you. We received {total} for:\n{lines}\n")
    if kind == "payment_failed" and details.get("willRetry") and details.get("offSession") and details.get("retryable"):
        return Message(
            f"Payment for order {order.order_id} failed; we will try again",
            f"Your payment of {total} failed ({reason}). We will try your saved card again shortly.\n",
        )
    if kind == "payment_failed" and details.get("willRetry"):
        pay = f" Pay with another card, or try again, here: {details['payUrl']}" if details.get("payUrl") else ""
        return Message(
            f"Payment for order {order.order_id} failed; you can try again",
            f"Your payment of {total} failed ({reason}).{pay}\n",
        )
    if kind == "payment_failed":
        return Message(f"Payment for order {order.order_id} failed", f"Your payment of {total} failed ({reason}).\n")
    if kind == "timed_out":
        return Message(
            f"Payment for order {order.order_id} was not completed",
            f"We did not receive your payment of {total} in time, so the order was cancelled.\n",
        )
    if kind == "out_of_stock":
        return Message(
            f"Order {order.order_id} cancelled: out of stock",
            f"We could not reserve your order ({reason}), so we released the hold on your card: you were not "
            f"charged the {total}.\n",
        )
    if kind == "authorization_expired":
        return Message(
            f"Order {order.order_id} cancelled",
            f"We could not complete your order in time and released the hold of {total} on your card: you were not "
            "charged.\n",
        )
    if kind == "refunded":
        return Message(
            f"Order {order.order_id} refunded",
            f"We could not fulfil your order ({reason}) and refunded {total} in full.\n",
        )
    raise ValueError(f"unknown notification kind {kind!r}")


class Mailer:
    def __init__(self, sesv2_client: Any, sender: str) -> None:
        self._client = sesv2_client
        self._sender = sender

    def send(self, recipient: str, message: Message) -> str:
        try:
            response = self._client.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": [recipient]},
                Content={"Simple": {"Subject": {"Data": message.subject}, "Body": {"Text": {"Data": message.body}}}},
            )
        except ClientError as error:
            if is_transient(error):
                raise AwsUnavailable(f"SES: {error}") from error
            raise
        except BotoCoreError as error:
            raise AwsUnavailable(f"SES: {error}") from error
        return str(response["MessageId"])
