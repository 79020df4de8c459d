"""AcceptOrder: validate the start input and claim the order for this execution."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import order_records
from payments.executions import ExecutionRef
from payments.observability import logger, metrics, now, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(execution_id=event.get("executionId"))
    execution = ExecutionRef(event["executionId"], event["executionStartedAt"])
    return steps.accept_order(event.get("order"), execution, order_records(), now())
