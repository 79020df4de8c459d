"""FulfilOrder: confirm the payment with Stripe, then reserve the stock and mark the order fulfilled."""

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
    result = steps.fulfil_order(
        order, event["paymentIntentId"], stripe=stripe_gateway(), orders=order_records(), now=now(),
        captured=(event.get("authorization") or {}).get("captured"),
    )  # fmt: skip
    if result["fulfilled"]:
        metrics.add_metric(name="OrdersFulfilled", unit=MetricUnit.Count, value=1)
    return result
