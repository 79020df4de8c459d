"""RetryOffSession: charge the customer's saved card again, on the same PaymentIntent, while they are away."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import payment_records, stripe_gateway
from payments.observability import logger, metrics, now, tracer
from payments.orders import parse_order


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    order = parse_order(event["order"])
    logger.append_keys(order_id=order.order_id, payment_intent_id=event["paymentIntentId"], attempt=event["attempt"])
    result = steps.retry_off_session(
        order,
        event["paymentIntentId"],
        int(event["attempt"]),
        stripe=stripe_gateway(),
        payments=payment_records(),
        now=now(),
    )
    logger.info("Saved card charged again", extra={"status": result["status"]})
    return result
