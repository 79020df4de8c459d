"""Stripe's events from Amazon EventBridge: the partner event bus's rule puts them on an SQS queue, and this
reads them in batches. Each goes the webhook's one path; one that failed for our own transient reasons is
reported back and comes again after the visibility timeout, then to the dead-letter queue.

AWS has authenticated the partner event source (aws.partner/stripe.com/...): there is no Stripe signature.
"""

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import ingress
from payments.errors import AwsUnavailable, StripeUnavailable
from payments.observability import logger, metrics, tracer

STRIPE_SOURCE = "aws.partner/stripe.com/"


def _stripe_event(body: str) -> dict[str, Any] | None:
    """The Stripe event an EventBridge envelope carries in `detail`; None for anything else."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not str(envelope.get("source", "")).startswith(STRIPE_SOURCE):
        return None
    detail = envelope.get("detail")
    return detail if isinstance(detail, dict) else None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    retry = []
    for record in event.get("Records") or []:
        stripe_event = _stripe_event(record.get("body") or "")
        if stripe_event is None:
            logger.warning(
                "Not a Stripe event from EventBridge: dropped", extra={"message_id": record.get("messageId")}
            )
            metrics.add_metric(name="EventBridgeMalformed", unit=MetricUnit.Count, value=1)
            continue
        try:
            result = ingress.receive(stripe_event)
        except (AwsUnavailable, StripeUnavailable):
            logger.exception("Transient failure; the message comes again")
            retry.append({"itemIdentifier": record["messageId"]})
            continue
        logger.info("Stripe event handled", extra={"event_type": stripe_event.get("type"), "result": result.value})
        metrics.add_metric(name="EventBridge" + result.value.title().replace("_", ""), unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": retry}
