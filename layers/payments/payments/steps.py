"""One domain function per state of the payment workflow. None of them knows about Lambda."""

import json
from contextlib import suppress
from datetime import datetime
from typing import Any

from payments.errors import AuthorizationExpired, PaymentNotConfirmed, PaymentRequestRejected
from payments.executions import ExecutionRef
from payments.notifications import Mailer, compose
from payments.orders import Order, parse_order
from payments.records import OrderRecords, PaymentRecords
from payments.stripe_gateway import UNPAID, PaymentIntentView, StripeGateway
from payments.task_tokens import TaskTokens

# Once an outcome is stored, the token writer resumes the execution itself: a webhook that
# came before the token was stored is not lost.
TOKEN_TTL_MARGIN_SECONDS = 86400
# Far longer than a request can run (Lambda's timeout is 30 s): a key whose last request is this old has
# nothing in flight.
KEY_RETIRE_AFTER_SECONDS = 300
# Our clock against Stripe's `created`, when looking for a PaymentIntent made by a request we sent.
CLOCK_SKEW_SECONDS = 300


def accept_order(raw: Any, execution: ExecutionRef, orders: OrderRecords, now: datetime) -> dict[str, Any]:
    """Validate the start input and claim the order for this execution (DuplicateOrder if another holds it)."""
    order = parse_order(raw)
    orders.claim(order, execution, now)
    return order.to_dict()


def request_payment(
    order: Order, attempt: int, execution_id: str, *,
    stripe: StripeGateway, payments: PaymentRecords, orders: OrderRecords, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The attempt's one PaymentIntent: the one recorded for it, one that a lost answer created, or a new one.

    A retry, a park or a redrive can come back after Stripe has forgotten the idempotency key (24 h) or
    while the key replays a stored 500, so the order record, then Stripe's list, say first whether the
    attempt has a PaymentIntent already. A key is retired (the next generation used) only when no
    PaymentIntent came of it and its last request is long over, so no request still in flight can race it.
    """
    with stripe.token_first():  # a spent budget refuses before the attempt is recorded: its retry need not look
        earlier = orders.begin_attempt(order.order_id, attempt, now)
        payment_intent = _earlier_payment_intent(order, attempt, earlier, stripe) if earlier else None
        if payment_intent is None:
            generation = 1
            if earlier:
                last_request = datetime.fromisoformat(earlier["lastRequestAt"])
                retire = (now - last_request).total_seconds() >= KEY_RETIRE_AFTER_SECONDS
                generation = int(earlier["keyGeneration"]) + retire
                orders.note_request(order.order_id, attempt, generation, now)
            payment_intent = stripe.create_payment_intent(order, attempt, execution_id, generation)
    bound = orders.record_payment_intent(order.order_id, attempt, payment_intent.id, now)
    if bound != payment_intent.id:  # an overlapping run of this step bound its own first: keep that one
        with suppress(PaymentRequestRejected):
            stripe.cancel(payment_intent.id, "duplicate")
        payment_intent = stripe.retrieve(bound)
    payments.record_payment_intent(payment_intent.id, order.order_id, attempt, execution_id, payment_intent.status, now)
    return {"paymentIntentId": payment_intent.id, "status": payment_intent.status}


def _earlier_payment_intent(
    order: Order, attempt: int, earlier: dict[str, Any], stripe: StripeGateway
) -> PaymentIntentView | None:
    if earlier.get("paymentIntentId"):
        return stripe.retrieve(earlier["paymentIntentId"])
    first_request = int(datetime.fromisoformat(earlier["requestedAt"]).timestamp())
    return stripe.find_payment_intent(order.order_id, attempt, created_since=first_request - CLOCK_SKEW_SECONDS)


def register_task_token(
    payment_intent_id: str, task_token: str, *,
    payments: PaymentRecords, task_tokens: TaskTokens, timeout_seconds: int, now: datetime,
    attempt: int = 1, consumed_event_id: str | None = None,
) -> str:  # fmt: skip
    """Store the token; resume at once with an outcome that came first, unless it is the one the execution
    consumed already (a decline it is giving the customer another try after, on the same PaymentIntent)."""
    expires_at = int(now.timestamp()) + timeout_seconds + TOKEN_TTL_MARGIN_SECONDS
    item = payments.store_task_token(payment_intent_id, task_token, expires_at, now, attempt)
    outcome = item.get("outcome")
    if not outcome or outcome.get("eventId") == consumed_event_id:
        return "waiting"
    return "resumed" if task_tokens.resume(task_token, outcome) else "token_spent"


def retry_off_session(
    order: Order,
    payment_intent_id: str,
    attempt: int,
    *,
    stripe: StripeGateway,
    payments: PaymentRecords,
    now: datetime,
) -> dict[str, Any]:
    """Charge the customer's saved card again on the same PaymentIntent, unless it has moved on meanwhile (the
    customer paid on-session, or it is processing): its webhook resumes the execution either way."""
    payment_intent = stripe.retrieve(payment_intent_id)
    if payment_intent.status == "requires_payment_method" and order.payment_method:
        payment_intent = stripe.confirm_off_session(payment_intent_id, order.payment_method, attempt)
        payments.record_status(payment_intent_id, payment_intent.status, now)
    return {"status": payment_intent.status}


def failure_reason(payment_intent: PaymentIntentView) -> str:
    if payment_intent.failure_code is None:
        return f"PaymentIntent {payment_intent.status}"
    code = payment_intent.decline_code or payment_intent.failure_code
    message = f": {payment_intent.failure_message}" if payment_intent.failure_message else ""
    return f"{code}{message}"


def settle_payment_intent(
    payment_intent_id: str, why: str, *, stripe: StripeGateway, payments: PaymentRecords, now: datetime
) -> dict[str, Any]:
    """Take Stripe's word for the PaymentIntent's status and cancel it unless it is paid, paying or authorised
    (an authorisation is captured once the stock is reserved, or released on purpose).

    After this a failed or timed-out attempt can never be charged later.
    """
    payment_intent = stripe.retrieve(payment_intent_id)
    reason = failure_reason(payment_intent)
    if payment_intent.status in UNPAID:
        # If it moved on (paid or processing) between our two calls, the retrieve below says how.
        with suppress(PaymentRequestRejected):
            stripe.cancel(payment_intent_id, "abandoned")
        payment_intent = stripe.retrieve(payment_intent_id)
    if why == "timeout" and payment_intent.status == "canceled":
        reason = f"no payment outcome within the timeout ({reason})"
    payments.record_status(payment_intent_id, payment_intent.status, now)
    return {"status": payment_intent.status, "reason": reason}


def fulfil_order(
    order: Order, payment_intent_id: str, *,
    stripe: StripeGateway, orders: OrderRecords, now: datetime, by: str | None = None,
    captured: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fulfil only what Stripe says is paid, and only the attempt's own PaymentIntent: a resumed outcome is not
    proof (a task token can leak). `captured` is CapturePayment's answer from Stripe, which the state machine
    keeps where only that step writes; it saves reading the PaymentIntent again (Stripe allows 25 reads a second
    of one endpoint: BENCHMARKS.md, "Capacity")."""
    if captured and captured.get("paymentIntentId") == payment_intent_id and captured.get("attempt"):
        return {"fulfilled": orders.fulfil(order, int(captured["attempt"]), payment_intent_id, now, by=by)}
    payment_intent = stripe.retrieve(payment_intent_id)
    attempt = payment_intent.metadata.get("attempt", "")
    if (
        payment_intent.status != "succeeded"
        or payment_intent.metadata.get("order_id") != order.order_id
        or not (attempt.isascii() and attempt.isdigit())
    ):
        raise PaymentNotConfirmed(f"PaymentIntent {payment_intent_id} is {payment_intent.status} at Stripe")
    return {"fulfilled": orders.fulfil(order, int(attempt), payment_intent_id, now, by=by)}


# Capture (or release) an authorisation this long before Stripe's deadline at the latest: a capture must not race it.
CAPTURE_MARGIN_SECONDS = 3600


def reserve_stock(
    order: Order, payment_intent_id: str, *, stripe: StripeGateway, orders: OrderRecords, now: datetime
) -> dict[str, Any]:
    """Hold the order's stock for an authorisation Stripe confirms (requires_capture), before anything is charged.
    Raises OutOfStock (the authorisation is then released: no charge, no refund), or PaymentNotConfirmed."""
    payment_intent = stripe.authorization(payment_intent_id)
    attempt = payment_intent.metadata.get("attempt", "")
    if (
        payment_intent.status != "requires_capture"
        or payment_intent.metadata.get("order_id") != order.order_id
        or not (attempt.isascii() and attempt.isdigit())
    ):
        raise PaymentNotConfirmed(f"PaymentIntent {payment_intent_id} is {payment_intent.status} at Stripe")
    reserved = orders.reserve(order, int(attempt), payment_intent_id, payment_intent.capture_before, now)
    return {"reserved": reserved, "captureBefore": payment_intent.capture_before}


def capture_payment(
    payment_intent_id: str, capture_before: int | None, *, stripe: StripeGateway, now: datetime
) -> dict[str, Any]:
    """Take the authorised money now that the stock is held, never after the authorisation's deadline: past
    `capture_before` (as ReserveStock read it from Stripe) less a margin it is released instead, and
    AuthorizationExpired says so (as for one that expired: docs.stripe.com/payments/place-a-hold-on-a-payment-method).
    One Stripe request when all is well: Stripe refuses to capture a PaymentIntent that is not requires_capture
    (docs.stripe.com/api/payment_intents/capture), and only then is it read, to learn why."""
    too_late = capture_before is not None and now.timestamp() >= capture_before - CAPTURE_MARGIN_SECONDS
    try:
        if too_late:
            stripe.cancel(payment_intent_id, "abandoned")
            raise AuthorizationExpired(f"the authorisation of {payment_intent_id} would lapse: released, not charged")
        payment_intent = stripe.capture(payment_intent_id)
    except PaymentRequestRejected:
        payment_intent = stripe.authorization(payment_intent_id)  # captured already, or it lapsed meanwhile
    if payment_intent.status == "canceled":
        why = payment_intent.cancellation_reason or "canceled"
        raise AuthorizationExpired(f"the authorisation of {payment_intent_id} ended ({why}): not charged")
    attempt = payment_intent.metadata.get("attempt", "")
    if payment_intent.status != "succeeded" or not (attempt.isascii() and attempt.isdigit()):
        raise PaymentNotConfirmed(f"PaymentIntent {payment_intent_id} is {payment_intent.status} at Stripe")
    return {"status": payment_intent.status, "paymentIntentId": payment_intent.id, "attempt": int(attempt)}


def release_authorization(
    order: Order, payment_intent_id: str, error: dict[str, Any], *,
    stripe: StripeGateway, orders: OrderRecords, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Release an authorisation that will not be captured, and the stock held for it. `error` is the state
    machine's caught error (OutOfStock, AuthorizationExpired): its message is the reason."""
    try:
        reason = json.loads(error.get("Cause") or "{}").get("errorMessage") or str(error.get("Error"))
    except (ValueError, AttributeError):
        reason = str(error.get("Error"))
    payment_intent = stripe.retrieve(payment_intent_id)
    if payment_intent.status == "requires_capture":
        with suppress(PaymentRequestRejected):  # captured or expired meanwhile: the retrieve below tells
            stripe.cancel(payment_intent_id, "abandoned")
        payment_intent = stripe.retrieve(payment_intent_id)
    if payment_intent.status == "succeeded":
        raise PaymentNotConfirmed(f"PaymentIntent {payment_intent_id} was captured: it is not released")
    orders.release(order, payment_intent_id, now, reason)
    return {"status": payment_intent.status, "reason": reason}


def refund_payment(
    order: Order, payment_intent_id: str, error: dict[str, Any], *,
    stripe: StripeGateway, orders: OrderRecords, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Refund a paid order that could not be fulfilled. `error` is the state machine's caught error."""
    name = str(error.get("Error") or "OutOfStock")
    try:
        message = json.loads(error.get("Cause") or "{}").get("errorMessage") or name
    except (ValueError, AttributeError):
        message = name
    orders.reserve_refund(order.order_id, now)  # OrderAlreadyFulfilled: its step failed after it committed
    refund_id = stripe.refund(payment_intent_id, reason=name)
    orders.append_status(order.order_id, "refunded", now, reason=message, refundId=refund_id)
    return {"refundId": refund_id, "error": name, "reason": message}


def notify_customer(kind: str, order: Order, details: dict[str, Any], *, mailer: Mailer | None) -> dict[str, Any]:
    """`details`: reason, willRetry, offSession, retryable, payUrl (where the customer pays again), paymentIntentId."""
    if mailer is None or not order.customer_email:
        return {"sent": False}
    return {"sent": True, "messageId": mailer.send(order.customer_email, compose(kind, order, details))}
