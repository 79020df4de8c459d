"""POST /payments (IAM): validate an order and start its payment, named by the order id. 202 with where to look."""

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import merchant_api
from payments.adapters import executions
from payments.errors import AwsUnavailable, InvalidOrder, OrderAlreadyStarted
from payments.http import error, response
from payments.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        order = json.loads(event.get("body") or "")
    except ValueError:
        return error(400, "the body must be the order, a JSON object")
    try:
        order_id, execution_arn = merchant_api.start_payment(order, executions=executions())
    except InvalidOrder as invalid:
        return error(400, str(invalid), field=invalid.field, reason=invalid.reason)
    except OrderAlreadyStarted as started:
        order_id = str(order.get("orderId"))
        return error(409, str(started), statusUrl=f"/payments/{order_id}")
    except AwsUnavailable:
        logger.exception("Could not start the payment")
        return error(503, "temporarily unavailable; try again")
    logger.info("Payment started", extra={"order_id": order_id})
    body = {"orderId": order_id, "executionArn": execution_arn, "statusUrl": f"/payments/{order_id}"}
    return response(202, body, Location=body["statusUrl"])
