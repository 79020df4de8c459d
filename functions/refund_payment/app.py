"""RefundPayment: refund a paid order that could not be fulfilled (once, by idempotency key)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import order_records, stripe_gateway
from payments.observability import logger, metrics, now, tracer
from payments.orders import parse_order


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    order = parse_order(event["order"])
    logger.append_keys(order_id=order.order_id, payment_intent_id=event["paymentIntentId"])
    result = steps.refund_payment(
        order, event["paymentIntentId"], event.get("error") or {},
        stripe=stripe_gateway(), orders=order_records(), now=now(),
    )  # fmt: skip
    logger.warning("Payment refunded", extra={"refund_id": result["refundId"], "reason": result["reason"]})
    metrics.add_metric(name="PaymentsRefunded", unit=MetricUnit.Count, value=1)
    return result
