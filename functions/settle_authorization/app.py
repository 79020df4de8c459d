"""CapturePayment / ReleaseAuthorization: take an authorised payment once its stock is held, or release it
(and the stock held for it) when it will not be captured."""

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
    payment_intent_id = event["paymentIntentId"]
    order_id = event["orderId"] if event["action"] == "capture" else event["order"].get("orderId")
    logger.append_keys(order_id=order_id, payment_intent_id=payment_intent_id, action=event["action"])
    if event["action"] == "capture":
        result = steps.capture_payment(
            payment_intent_id, event.get("captureBefore"), stripe=stripe_gateway(), now=now()
        )
        metrics.add_metric(name="AuthorizationsCaptured", unit=MetricUnit.Count, value=1)
    else:
        order = parse_order(event["order"])
        result = steps.release_authorization(
            order, payment_intent_id, event.get("error") or {}, stripe=stripe_gateway(), orders=order_records(),
            now=now(),
        )  # fmt: skip
        metrics.add_metric(name="AuthorizationsReleased", unit=MetricUnit.Count, value=1)
    logger.info("Authorisation settled", extra={"status": result["status"]})
    return result
