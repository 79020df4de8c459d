"""GET /payments/{orderId} (IAM): where the order's payment stands; while the customer must act, the
PaymentIntent's client_secret for the merchant's checkout page (read from Stripe, never stored or logged)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import merchant_api
from payments.adapters import order_records, payment_records, stripe_gateway
from payments.errors import AwsUnavailable, StripeUnavailable
from payments.http import error, response
from payments.observability import logger, metrics, tracer
from payments.orders import ORDER_ID


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    order_id = str((event.get("pathParameters") or {}).get("orderId") or "")
    if not ORDER_ID.match(order_id):
        return error(400, "orderId must be 1-64 characters of letters, digits, '-' or '_'")
    logger.append_keys(order_id=order_id)
    try:
        status = merchant_api.payment_status(
            order_id, orders=order_records(), payments=payment_records(), stripe=stripe_gateway()
        )
    except (AwsUnavailable, StripeUnavailable):
        logger.exception("Could not read the payment")
        return error(503, "temporarily unavailable; try again")
    if status is None:
        return error(404, f"no order {order_id}: not started, or not accepted yet")
    logger.info("Payment read", extra={"status": status["status"]})
    return response(200, status, **{"Cache-Control": "no-store"})
