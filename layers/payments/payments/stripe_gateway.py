"""The adapter between payment terms and Stripe's API (stripe-python's StripeClient).

Every write carries an idempotency key derived from the order and attempt, so a retry by
Lambda, by the state machine or by stripe-python itself can never create a second charge.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe

from payments.errors import PaymentRequestRejected, StripeUnavailable
from payments.orders import Order

# Statuses Stripe allows a PaymentIntent to be canceled from.
CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


@dataclass(frozen=True)
class PaymentIntentView:
    """What the workflow needs to know of a PaymentIntent."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: dict[str, str]
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None

    @classmethod
    def from_stripe(cls, payment_intent: Any) -> "PaymentIntentView":
        data = payment_intent.to_dict() if hasattr(payment_intent, "to_dict") else dict(payment_intent)
        error = data.get("last_payment_error") or {}
        return cls(
            id=data["id"],
            status=data["status"],
            amount=data.get("amount", 0),
            currency=data.get("currency", ""),
            metadata=dict(data.get("metadata") or {}),
            failure_code=error.get("code"),
            decline_code=error.get("decline_code"),
            failure_message=error.get("message"),
        )


def payment_idempotency_key(order_id: str, attempt: int) -> str:
    return f"{order_id}:attempt-{attempt}:create"


class StripeGateway:
    # Quoted: evaluating stripe.StripeClient here would load the client and all its services (~20 ms) into
    # functions that only verify signatures (the webhook).
    def __init__(self, client: "stripe.StripeClient", app_id: str) -> None:
        self._client = client
        self._app_id = app_id

    @classmethod
    def connect(cls, api_key: str, api_base: str, network_retries: int, app_id: str) -> "StripeGateway":
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=network_retries,
        )
        return cls(client, app_id)

    def create_payment_intent(self, order: Order, attempt: int, execution_id: str) -> PaymentIntentView:
        params: dict[str, Any] = {
            "amount": order.amount,
            "currency": order.currency,
            "metadata": {
                "app_id": self._app_id,
                "order_id": order.order_id,
                "attempt": str(attempt),
                "execution_id": execution_id,
            },
            "description": f"Order {order.order_id}",
        }
        if order.customer_id:
            params["customer"] = order.customer_id
        if order.payment_method:
            params.update(
                payment_method=order.payment_method,
                confirm=True,
                automatic_payment_methods={"enabled": True, "allow_redirects": "never"},
            )
        options: stripe.RequestOptions = {
            "idempotency_key": payment_idempotency_key(order.order_id, attempt)
        }
        try:
            return PaymentIntentView.from_stripe(
                _call(lambda: self._client.v1.payment_intents.create(params, options))
            )
        except stripe.CardError as declined:
            # A decline is an outcome, not an error: the PaymentIntent exists and its
            # payment_intent.payment_failed webhook resumes the workflow like any other.
            payment_intent = declined.error.payment_intent if declined.error else None
            if payment_intent is None:
                raise PaymentRequestRejected(str(declined.user_message or declined)) from declined
            return PaymentIntentView.from_stripe(payment_intent)

    def retrieve(self, payment_intent_id: str) -> PaymentIntentView:
        return PaymentIntentView.from_stripe(
            _call(lambda: self._client.v1.payment_intents.retrieve(payment_intent_id))
        )

    def cancel(self, payment_intent_id: str, reason: str) -> PaymentIntentView:
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:cancel"}
        params: dict[str, Any] = {"cancellation_reason": reason}
        return PaymentIntentView.from_stripe(
            _call(lambda: self._client.v1.payment_intents.cancel(payment_intent_id, params, options))
        )

    def refund(self, payment_intent_id: str, reason: str) -> str:
        """Refund the whole PaymentIntent once, whatever the retries. Returns the refund id."""
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:refund"}
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "metadata": {"app_id": self._app_id, "reason": reason},
        }
        refund = _call(lambda: self._client.v1.refunds.create(params, options))
        return str(refund.id)


def _call[T](request: Callable[[], T]) -> T:
    """Run one Stripe request, turning Stripe's errors into the workflow's typed errors."""
    try:
        return request()
    except stripe.CardError:
        raise
    except (stripe.APIConnectionError, stripe.RateLimitError) as transient:
        raise StripeUnavailable(str(transient.user_message or transient)) from transient
    except stripe.APIError as server_side:
        raise StripeUnavailable(str(server_side.user_message or server_side)) from server_side
    except stripe.StripeError as rejected:
        if (rejected.http_status or 0) >= 500:
            raise StripeUnavailable(str(rejected.user_message or rejected)) from rejected
        raise PaymentRequestRejected(str(rejected.user_message or rejected)) from rejected
