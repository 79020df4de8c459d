"""The merchant's API: start the payment of an order, and read where it stands.

The merchant's backend calls both, signed with SigV4 (the routes use API Gateway's IAM authorizer); its
checkout page gets what it needs from that backend. The PaymentIntent's client_secret, which lets a browser
confirm the payment, is read from Stripe on each request while the customer must act, and stored nowhere.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from payments.admission import AdmissionQueue
from payments.errors import AwsUnavailable
from payments.executions import Executions
from payments.observability import logger
from payments.orders import parse_order
from payments.records import OrderRecords, PaymentRecords
from payments.stripe_gateway import StripeGateway

# While the PaymentIntent is in one of these, the customer can still pay it
# (docs.stripe.com/payments/paymentintents/lifecycle).
CUSTOMER_CAN_ACT = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
# Order statuses after which nobody pays any more.
SETTLED_ORDER = frozenset({"fulfilled", "refunded", "failed", "canceled", "timed_out", "needs_attention"})


def start_payment(
    raw: Any, *, executions: Executions, admission: Callable[[], AdmissionQueue], orders: Callable[[], OrderRecords],
    now: datetime,
) -> tuple[str, str | None]:  # fmt: skip
    """Validate the order (InvalidOrder names the field), then start its execution, named by the order id.
    Returns (order id, execution ARN), or (order id, None) when the order waits in the admission queue.

    StartExecution with a running execution's name and input answers as the first time, so a retried request
    is harmless; another input, or a name whose execution has ended, is ExecutionAlreadyExists (OrderAlreadyStarted
    here) while Step Functions remembers the name (90 days); after that the order record refuses it (DuplicateOrder).
    When Step Functions refuses the start for its own reasons (throttling, its execution quota, an outage), the order
    is queued and started later by the same rules (payments.admission); AwsUnavailable only if SQS refuses it too.
    The queue and the orders table are asked for (their clients made) only then: the happy path is one request."""
    order = parse_order(raw)
    try:
        return order.order_id, executions.start(order.order_id, order.to_dict())
    except AwsUnavailable as refused:
        admission().put(order)
        logger.warning("Start refused by Step Functions: order queued", extra={"order_id": order.order_id,
                                                                             "error": str(refused)})  # fmt: skip
    try:
        orders().note_queued(order, now)
    except AwsUnavailable:  # the order is queued all the same; its status reads 404 until its execution claims it
        logger.exception("Could not record the queued order", extra={"order_id": order.order_id})
    return order.order_id, None


def payment_status(
    order_id: str, *, orders: OrderRecords, payments: PaymentRecords, stripe: StripeGateway
) -> dict[str, Any] | None:
    """Where the order's payment stands, and what the customer's browser needs while the customer must act.
    None when no execution has accepted the order (yet) and it is not queued: status "queued" is an order in the
    admission queue, waiting for Step Functions to start its execution."""
    record = orders.get(order_id)
    if record is None:
        return None
    status: dict[str, Any] = {
        "orderId": order_id, "status": record["status"], "amount": record["amount"], "currency": record["currency"],
    }  # fmt: skip
    payment_intent_id = ((record.get("attempts") or {}).get("1") or {}).get("paymentIntentId")
    if payment_intent_id is None:
        return status
    payment = payments.get(payment_intent_id) or {}
    outcome = payment.get("outcome") or {}
    status["attempt"] = int(payment.get("attempt") or 1)
    # After the last failed attempt the workflow cancels the PaymentIntent: the canceled outcome still carries
    # the decline (Stripe keeps last_payment_error), and the customer still needs to know it.
    declined = outcome.get("status") == "canceled" and outcome.get("failureCode")
    if outcome.get("status") == "payment_failed" or declined:
        status["lastFailure"] = outcome.get("reason")
    status["payment"] = {"paymentIntentId": payment_intent_id, "status": payment.get("status")}
    if record["status"] not in SETTLED_ORDER:
        payment_intent = stripe.retrieve(payment_intent_id)
        status["payment"]["status"] = payment_intent.status
        if payment_intent.status in CUSTOMER_CAN_ACT and payment_intent.client_secret:
            status["payment"].update(clientSecret=payment_intent.client_secret, nextAction=payment_intent.next_action)
    return status
