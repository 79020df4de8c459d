"""The one way in for Stripe's events: the webhook (signature checked) and the EventBridge queue (AWS has
authenticated the partner source) both hand each event here, snapshot or thin."""

from typing import Any

from payments.adapters import payment_records, recovery, stripe_gateway, task_tokens
from payments.config import settings
from payments.observability import logger, now
from payments.webhooks import WebhookResult, handle_stripe_event


def payment_intent_id_of(stripe_event: dict[str, Any]) -> str | None:
    """The PaymentIntent a snapshot event carries, or a thin event names."""
    data = stripe_event.get("data")
    related = data.get("object") if isinstance(data, dict) else stripe_event.get("related_object")
    value = related.get("id") if isinstance(related, dict) else None
    return value if isinstance(value, str) else None


def receive(stripe_event: dict[str, Any]) -> WebhookResult:
    """Raises AwsUnavailable or StripeUnavailable for our own transient failures: the ingress retries."""
    logger.append_keys(stripe_event_id=stripe_event.get("id"), payment_intent_id=payment_intent_id_of(stripe_event))
    return handle_stripe_event(
        stripe_event, app_id=settings().app_id, payments=payment_records(), task_tokens=task_tokens(), now=now(),
        fetch_payment_intent=lambda payment_intent_id: stripe_gateway().payment_intent_data(payment_intent_id),
        recover=recovery(),
    )  # fmt: skip
