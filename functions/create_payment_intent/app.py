"""CreatePaymentIntent: one PaymentIntent per order attempt, whatever the retries."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import order_records, payment_records, stripe_gateway
from payments.observability import logger, metrics, now, tracer
from payments.orders import parse_order


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    order = parse_order(event["order"])
    logger.append_keys(order_id=order.order_id, attempt=event["attempt"], execution_id=event["executionId"])
    result = steps.request_payment(
        order, int(event["attempt"]), event["executionId"],
        stripe=stripe_gateway(), payments=payment_records(), orders=order_records(), now=now(),
    )  # fmt: skip
    logger.append_keys(payment_intent_id=result["paymentIntentId"])
    logger.info("PaymentIntent created", extra={"status": result["status"]})
    metrics.add_metric(name="PaymentIntentsCreated", unit=MetricUnit.Count, value=1)
    return result
