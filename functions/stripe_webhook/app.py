"""POST /webhooks/stripe: verify Stripe's signature, record the event, resume the waiting execution.

4xx for what Stripe should not send again; 503 only for our own transient failures.
"""

import base64
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import ingress
from payments.config import settings
from payments.credentials import stripe_credentials
from payments.errors import AwsUnavailable, StripeUnavailable
from payments.http import response
from payments.observability import logger, metrics, now, trace_handler
from payments.webhook_requests import WebhookRejected, request_method, verify_stripe_request
from payments.webhooks import WebhookResult


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@trace_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The HTTP API (payload 2.0) event read directly: Powertools' data classes would import every event
    # source's class at cold start (~25 ms) for three fields. The signature is over the raw bytes.
    config = settings()
    method = request_method(event)  # anything but an HTTP API event is an error naming what was expected
    try:
        body = event.get("body") or ""
        stripe_event = verify_stripe_request(
            method=method,
            headers={key.lower(): value for key, value in (event.get("headers") or {}).items()},
            body=base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8"),
            signing_secrets=stripe_credentials().webhook_signing_secrets,
            tolerance_seconds=config.webhook_tolerance_seconds,
            max_body_bytes=config.max_webhook_body_bytes,
            now=int(now().timestamp()),
        )
    except WebhookRejected as rejected:
        logger.warning("Webhook rejected", extra={"status": rejected.status, "reason": rejected.reason})
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
        return response(rejected.status, {"error": rejected.reason})
    except ValueError:  # a base64 body that does not decode
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
        return response(400, {"error": "body is not valid base64"})

    try:
        result = ingress.receive(stripe_event)
    except (AwsUnavailable, StripeUnavailable):
        logger.exception("Transient failure; Stripe will retry")
        metrics.add_metric(name="WebhooksTransientFailures", unit=MetricUnit.Count, value=1)
        return response(503, {"error": "temporarily unavailable"})
    logger.info("Webhook handled", extra={"event_type": stripe_event.get("type"), "result": result.value})
    metrics.add_metric(name="Webhook" + result.value.title().replace("_", ""), unit=MetricUnit.Count, value=1)
    if result is WebhookResult.MALFORMED:
        return response(400, {"error": "event has no readable PaymentIntent"})
    return response(200, {"received": True, "result": result.value})
