"""POST /payments (IAM): validate an order and start its payment, named by the order id. 202 with where to look;
an order Step Functions cannot start now waits in the admission queue (202 too, status "queued")."""

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import merchant_api
from payments.adapters import admission_queue, executions, order_records
from payments.errors import AwsUnavailable, InvalidOrder, OrderAlreadyStarted
from payments.http import error, response
from payments.observability import logger, metrics, now, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        order = json.loads(event.get("body") or "")
    except ValueError:
        return error(400, "the body must be the order, a JSON object")
    try:
        order_id, execution_arn = merchant_api.start_payment(
            order, executions=executions(), admission=admission_queue, orders=order_records, now=now()
        )
    except InvalidOrder as invalid:
        return error(400, str(invalid), field=invalid.field, reason=invalid.reason)
    except OrderAlreadyStarted as started:
        order_id = str(order.get("orderId"))
        return error(409, str(started), statusUrl=f"/payments/{order_id}")
    except AwsUnavailable:
        logger.exception("Could not start the payment")
        return error(503, "temporarily unavailable; try again")
    status_url = f"/payments/{order_id}"
    if execution_arn is None:
        metrics.add_metric(name="PaymentsQueued", unit=MetricUnit.Count, value=1)
        return response(202, {"orderId": order_id, "status": "queued", "statusUrl": status_url}, Location=status_url)
    logger.info("Payment started", extra={"order_id": order_id})
    body = {"orderId": order_id, "executionArn": execution_arn, "statusUrl": status_url}
    return response(202, body, Location=status_url)
