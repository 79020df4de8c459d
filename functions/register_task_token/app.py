"""WaitForPaymentOutcome: store the task token by PaymentIntent ID (or resume at once if the outcome came first)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import payment_records, task_tokens
from payments.config import settings
from payments.observability import logger, metrics, now, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    logger.append_keys(order_id=event.get("orderId"), payment_intent_id=event["paymentIntentId"])
    result = steps.register_task_token(
        event["paymentIntentId"], event["taskToken"],
        payments=payment_records(), task_tokens=task_tokens(),
        timeout_seconds=settings().payment_timeout_seconds, now=now(),
        attempt=int(event.get("attempt") or 1), consumed_event_id=event.get("consumedEventId"),
    )  # fmt: skip
    logger.info("Task token stored", extra={"result": result})
    if result != "waiting":
        metrics.add_metric(name="EarlyOutcomesResumed", unit=MetricUnit.Count, value=1)
    return {"result": result}
