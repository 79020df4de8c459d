"""SettleFailedAttempt / ReconcileAfterTimeout: Stripe's final word, and cancel what can no longer be paid."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import payment_records, stripe_gateway
from payments.observability import logger, metrics, now, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.get("orderId"), payment_intent_id=event["paymentIntentId"])
    result = steps.settle_payment_intent(
        event["paymentIntentId"], event["reason"], stripe=stripe_gateway(), payments=payment_records(), now=now()
    )
    logger.info("PaymentIntent settled", extra={"status": result["status"], "why": event["reason"]})
    return result
