"""The obvious Stripe webhook: the baseline the cold-start benchmark measures ours against.

Not part of the application. It is what the Powertools and Stripe examples lead to: stripe,
boto3 and the Powertools utilities a webhook reaches for (Logger, Tracer, Metrics, parameters,
the event handler, idempotency) imported and built at module top; the secret read through
`parameters.get_secret` with its default 5-second cache; the work after the signature check
made idempotent on the Stripe event id (two writes to an idempotency table); the token read,
then the event written, then the execution resumed.

Powertools' validation utility is left out: it needs fastjsonschema, which the layer does not
ship. Leaving it out makes this baseline faster, so the ratio errs in its favour.
"""

import json
import os

import boto3
import stripe
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
table = boto3.resource("dynamodb").Table(os.environ["PAYMENTS_TABLE"])
stepfunctions = boto3.client("stepfunctions")
idempotency_store = DynamoDBPersistenceLayer(table_name=os.environ.get("IDEMPOTENCY_TABLE", "idempotency"))
idempotency_config = IdempotencyConfig(event_key_jmespath="id")


@idempotent_function(data_keyword_argument="event", persistence_store=idempotency_store, config=idempotency_config)
def process(event: dict) -> dict:
    payment_intent = event["data"]["object"]
    item = table.get_item(Key={"paymentIntentId": payment_intent["id"]}).get("Item") or {}
    table.update_item(
        Key={"paymentIntentId": payment_intent["id"]},
        UpdateExpression="SET #status = :status, lastEventId = :event",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":status": payment_intent["status"], ":event": event["id"]},
    )
    if item.get("taskToken") and event["type"] == "payment_intent.succeeded":
        output = {"status": "succeeded", "paymentIntentId": payment_intent["id"]}
        stepfunctions.send_task_success(taskToken=item["taskToken"], output=json.dumps(output))
    return {"received": True}


@app.post("/webhooks/stripe")
def webhook() -> Response:
    secret = parameters.get_secret(os.environ["STRIPE_SECRET_ARN"], transform="json")
    try:
        event = stripe.Webhook.construct_event(
            app.current_event.decoded_body,
            app.current_event.headers.get("stripe-signature", ""),
            secret["webhook_signing_secret"],
        )
    except (ValueError, stripe.SignatureVerificationError):
        return Response(400, "application/json", json.dumps({"error": "bad signature"}))
    result = process(event=event.to_dict())
    metrics.add_metric(name="WebhookHandled", unit=MetricUnit.Count, value=1)
    return Response(200, "application/json", json.dumps(result))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
