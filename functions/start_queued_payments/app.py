"""The admission queue's reader: starts the payments the merchant API queued while Step Functions refused starts.
Thin: payments.admission does the work. A message whose start is refused again is reported back (partial batch
response) and comes again after the queue's visibility timeout; one that never starts ends in the dead-letter
queue, alarmed."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments.adapters import executions
from payments.admission import QueuedStart, start_queued
from payments.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    messages = [QueuedStart(record["messageId"], record.get("body") or "") for record in event.get("Records") or []]
    retry = start_queued(messages, executions())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}
