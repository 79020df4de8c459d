"""ReserveStock: hold the order's stock for an authorised card payment, before it is captured."""

from typing import Any

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
    result = steps.reserve_stock(
        order, event["paymentIntentId"], stripe=stripe_gateway(), orders=order_records(), now=now()
    )
    logger.info("Stock reserved", extra={"reserved_now": result["reserved"], "capture_before": result["captureBefore"]})
    return result
