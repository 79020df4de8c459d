"""The stripe_webhook Lambda handler end to end in-process: API Gateway HTTP API (payload 2.0) event in,
HTTP response out, over moto DynamoDB and Secrets Manager."""

import base64
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

import payments.adapters
import payments.config
from payments.records import PaymentRecords
from payments.task_tokens import TaskTokens
from payments.webhook_requests import NotAnHttpApiEvent
from tests.conftest import load_function
from tests.unit._support import APP_ID, FakeStepFunctions, payment_intent_event, stripe_signature, unique

SIGNING_SECRET = "whsec_test"
API_KEY = "sk_test_x"


@dataclass
class FakeLambdaContext:
    function_name: str = "StripeWebhookFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:StripeWebhookFunction"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


def _now() -> datetime:
    return datetime.now(UTC)


def _clear_caches() -> None:
    payments.config.settings.cache_clear()
    for value in vars(payments.adapters).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    parameters.clear_caches()


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_function("stripe_webhook")


@pytest.fixture
def webhook(
    tables: dict[str, Any], app: ModuleType, monkeypatch: pytest.MonkeyPatch, boto_session: boto3.Session
) -> Iterator[ModuleType]:
    secret = boto_session.client("secretsmanager").create_secret(
        Name="stripe-payments/stripe",
        SecretString=json.dumps({"api_key": API_KEY, "webhook_signing_secret": SIGNING_SECRET}),
    )
    monkeypatch.setenv("PAYMENTS_TABLE", "PaymentsTable")
    monkeypatch.setenv("STRIPE_SECRET_ARN", secret["ARN"])
    monkeypatch.setenv("APP_ID", APP_ID)
    _clear_caches()
    yield app
    _clear_caches()


def http_event(
    body: str | bytes,
    *,
    method: str = "POST",
    content_type: str | None = "application/json; charset=utf-8",
    signature: str | None = None,
    base64_encoded: bool = False,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event as Stripe's delivery produces it (headers lower-case)."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    if signature is None:
        signature = stripe_signature(raw, SIGNING_SECRET, int(time.time()) if timestamp is None else timestamp)
    headers = {
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "stripe-signature": signature,
        "content-length": str(len(raw)),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe",
        "rawPath": "/webhooks/stripe",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": "/webhooks/stripe",
                "protocol": "HTTP/1.1",
                "sourceIp": "54.187.174.169",
                "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
            "requestId": unique("req"),
            "routeKey": "POST /webhooks/stripe",
            "stage": "$default",
            "time": "29/May/2024:12:00:00 +0000",
            "timeEpoch": 1716984000000,
        },
        "body": base64.b64encode(raw).decode("ascii") if base64_encoded else raw.decode("utf-8", "replace"),
        "isBase64Encoded": base64_encoded,
    }


def invoke(app: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def payment_items(tables: dict[str, Any]) -> list[dict[str, Any]]:
    return tables["PaymentsTable"].scan(ConsistentRead=True)["Items"]


def succeeded_body(payment_intent_id: str, **kwargs: Any) -> str:
    return json.dumps(payment_intent_event("payment_intent.succeeded", payment_intent_id, **kwargs))


def test_valid_event_is_recorded_and_answered_200(webhook: ModuleType, tables) -> None:
    pi = unique("pi")

    status, body = invoke(webhook, http_event(succeeded_body(pi)))

    assert status == 200
    assert body == {"received": True, "result": "recorded"}
    [item] = payment_items(tables)
    assert (item["paymentIntentId"], item["status"]) == (pi, "succeeded")


def test_valid_event_with_a_waiting_token_resumes(
    webhook: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pi = unique("pi")
    PaymentRecords(dynamodb, "PaymentsTable").store_task_token(pi, "token-h1", 1_900_000_000, _now())
    sfn = FakeStepFunctions()
    monkeypatch.setattr("payments.ingress.task_tokens", lambda: TaskTokens(sfn))

    status, body = invoke(webhook, http_event(succeeded_body(pi)))

    assert (status, body["result"]) == (200, "resumed")
    assert [(token, out["status"]) for token, out in sfn.resumed] == [("token-h1", "succeeded")]


def test_transient_failure_of_ours_answers_503(
    webhook: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pi = unique("pi")
    PaymentRecords(dynamodb, "PaymentsTable").store_task_token(pi, "token-h2", 1_900_000_000, _now())
    sfn = FakeStepFunctions()
    sfn.fail_next = ["ThrottlingException"]
    monkeypatch.setattr("payments.ingress.task_tokens", lambda: TaskTokens(sfn))

    status, body = invoke(webhook, http_event(succeeded_body(pi)))

    assert status == 503  # so that Stripe delivers it again
    assert body == {"error": "temporarily unavailable"}


def test_spent_token_answers_200(
    webhook: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pi = unique("pi")
    PaymentRecords(dynamodb, "PaymentsTable").store_task_token(pi, "token-h3", 1_900_000_000, _now())
    sfn = FakeStepFunctions()
    sfn.fail_next = ["TaskTimedOut"]
    monkeypatch.setattr("payments.ingress.task_tokens", lambda: TaskTokens(sfn))

    status, body = invoke(webhook, http_event(succeeded_body(pi)))

    assert (status, body["result"]) == (200, "token_spent")


@pytest.mark.parametrize(
    ("event", "got"),
    [({"orderId": "order-1001", "amount": 2500}, "keys orderId, amount"), (["not", "a", "request"], "list")],
    ids=["start-input", "list"],
)
def test_an_event_that_is_no_http_request_is_an_error_naming_the_event_expected(
    webhook: ModuleType, tables, event: Any, got: str
) -> None:
    with pytest.raises(NotAnHttpApiEvent, match=f"HTTP API event, payload format 2.0.*got .*{got}"):
        webhook.lambda_handler(event, FakeLambdaContext())

    assert payment_items(tables) == []


def test_bad_signature_is_400_and_writes_nothing(webhook: ModuleType, tables) -> None:
    raw = succeeded_body(unique("pi"))
    forged = stripe_signature(raw, "whsec_forger", int(time.time()))

    status, body = invoke(webhook, http_event(raw, signature=forged))

    assert status == 400
    assert "signature" in body["error"]
    assert payment_items(tables) == []


def test_stale_timestamp_is_400_and_writes_nothing(webhook: ModuleType, tables) -> None:
    status, _ = invoke(webhook, http_event(succeeded_body(unique("pi")), timestamp=int(time.time()) - 3600))

    assert status == 400
    assert payment_items(tables) == []


def test_base64_encoded_body_is_verified_over_the_decoded_bytes(webhook: ModuleType, tables) -> None:
    pi = unique("pi")

    status, body = invoke(webhook, http_event(succeeded_body(pi), base64_encoded=True))

    assert (status, body["result"]) == (200, "recorded")
    assert [item["paymentIntentId"] for item in payment_items(tables)] == [pi]


def test_invalid_base64_body_is_400(webhook: ModuleType, tables) -> None:
    event = http_event(succeeded_body(unique("pi")), base64_encoded=True)
    event["body"] = "eyJpZCI6ICJldnRfMSJ9x"  # one character too many: incorrect padding

    status, body = invoke(webhook, event)

    assert status == 400
    assert "base64" in body["error"]
    assert payment_items(tables) == []


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_wrong_method_is_405(webhook: ModuleType, tables, method: str) -> None:
    status, _ = invoke(webhook, http_event(succeeded_body(unique("pi")), method=method))

    assert status == 405
    assert payment_items(tables) == []


@pytest.mark.parametrize("content_type", [None, "text/plain"], ids=["missing", "text-plain"])
def test_wrong_content_type_is_415(webhook: ModuleType, tables, content_type: str | None) -> None:
    status, _ = invoke(webhook, http_event(succeeded_body(unique("pi")), content_type=content_type))

    assert status == 415
    assert payment_items(tables) == []


def test_oversized_body_is_413(webhook: ModuleType, tables) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["data"]["object"]["description"] = "x" * 70_000  # over the default 64 KiB

    status, _ = invoke(webhook, http_event(json.dumps(event)))

    assert status == 413
    assert payment_items(tables) == []


def test_event_for_a_payment_intent_not_ours_is_200_and_writes_nothing(webhook: ModuleType, tables) -> None:
    raw = succeeded_body(unique("pi"), metadata={"app_id": "another-shop", "order_id": "o-1"})

    status, body = invoke(webhook, http_event(raw))

    assert (status, body["result"]) == (200, "not_ours")
    assert payment_items(tables) == []


def test_event_of_another_type_is_200_and_writes_nothing(webhook: ModuleType, tables) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["type"] = "charge.refunded"

    status, body = invoke(webhook, http_event(json.dumps(event)))

    assert (status, body["result"]) == (200, "ignored_type")
    assert payment_items(tables) == []


def test_signed_event_without_data_object_is_400(webhook: ModuleType, tables) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    del event["data"]["object"]

    status, body = invoke(webhook, http_event(json.dumps(event)))

    assert status == 400
    assert "PaymentIntent" in body["error"]
    assert payment_items(tables) == []


def test_signed_event_whose_data_is_not_an_object_is_400(webhook: ModuleType, tables) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["data"] = ["not", "an", "object"]

    status, _ = invoke(webhook, http_event(json.dumps(event)))

    assert status == 400


def test_secrets_never_reach_the_log(webhook: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(webhook.logger.registered_handler, "stream", log)  # the JSON lines Lambda would ship
    raw = succeeded_body(unique("pi"))

    invoke(webhook, http_event(raw))
    invoke(webhook, http_event(raw, signature=stripe_signature(raw, "whsec_forger", int(time.time()))))

    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["Webhook handled", "Webhook rejected"]
    for secret in (SIGNING_SECRET, API_KEY):
        assert secret not in log.getvalue()
