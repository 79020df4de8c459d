"""SendReceipt / Notify*: e-mail the customer about the payment."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import mailer
from payments.config import settings
from payments.observability import logger, metrics, tracer
from payments.orders import checkout_url, parse_order


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    order = parse_order(event["order"])
    logger.append_keys(order_id=order.order_id, kind=event["kind"])
    details = {
        key: event[key] for key in ("reason", "willRetry", "offSession", "retryable", "paymentIntentId") if key in event
    }
    details["payUrl"] = checkout_url(settings().checkout_page_url, order.order_id)
    result = steps.notify_customer(event["kind"], order, details, mailer=mailer())
    logger.info("Customer notified" if result["sent"] else "No e-mail to send", extra={"kind": event["kind"]})
    return result
