"""Regressions for what `make reliability` found (docs/reliability.md lists them)."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local_runtime.fake_stripe import FakeStripe
from payments import steps
from payments.errors import OrderAlreadyFulfilled
from payments.executions import ExecutionRef
from payments.orders import parse_order
from payments.records import OrderRecords, PaymentRecords
from payments.stripe_gateway import StripeGateway
from payments.task_tokens import TaskTokens
from payments.webhook_requests import WebhookRejected, verify_stripe_request
from payments.webhooks import WebhookResult, handle_payment_event
from tests.conftest import ROOT, SAMPLE_CUSTOMER, sample_order
from tests.unit._support import APP_ID, FakeStepFunctions, payment_intent_event, stripe_signature, unique

SECRET = "whsec_findings"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ASL = json.loads((ROOT / "statemachine" / "payment_workflow.asl.json").read_text())


def verify(body: bytes, signature: str | bytes | None = None) -> dict[str, Any]:
    now = int(time.time())
    header = stripe_signature(body, SECRET, now) if signature is None else signature
    if isinstance(header, bytes):
        header = header.decode("latin-1")  # as http.server and API Gateway hand header bytes over
    return verify_stripe_request(
        method="POST", headers={"content-type": "application/json", "stripe-signature": header}, body=body,
        signing_secrets=(SECRET,), tolerance_seconds=300, max_body_bytes=65536, now=now,
    )  # fmt: skip


# -- the webhook's request checks: a 400, never a crash (a crash is a 500, and Stripe retries it)


def test_non_ascii_signature_header_is_a_400_not_a_crash() -> None:
    # stripe-python compares signatures with hmac.compare_digest, which raises TypeError on non-ASCII text
    with pytest.raises(WebhookRejected) as caught:
        verify(b"{}", f"t={int(time.time())},v1=".encode() + b"\xe9" * 64)

    assert caught.value.status == 400


def test_a_timestamp_too_long_to_be_one_is_a_400() -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify(b"{}", "t=" + "9" * 5000 + ",v1=00")

    assert caught.value.status == 400


def test_json_nested_deeper_than_the_parser_goes_is_a_400() -> None:
    body = b'{"data": ' + b"[" * 20000 + b"]" * 20000 + b"}"

    with pytest.raises(WebhookRejected) as caught:
        verify(body)

    assert (caught.value.status, caught.value.reason) == (400, "body is not JSON")


# -- events signed by Stripe that this deployment cannot use: malformed (400) or not ours (200), no write


@pytest.fixture
def handle(dynamodb: Any, tables: dict[str, Any]):  # type: ignore[no-untyped-def]
    payments = PaymentRecords(dynamodb, "PaymentsTable")

    def _handle(event: dict[str, Any]) -> tuple[WebhookResult, list[dict[str, Any]]]:
        result = handle_payment_event(
            event, app_id=APP_ID, payments=payments, task_tokens=TaskTokens(FakeStepFunctions()), now=NOW
        )
        return result, tables["PaymentsTable"].scan()["Items"]

    return _handle


def succeeded(**object_changes: Any) -> dict[str, Any]:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["data"]["object"].update(object_changes)
    return event


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("created is a boolean", {**succeeded(), "created": True}),
        ("created beyond DynamoDB's numbers", {**succeeded(), "created": 10**40}),
        ("metadata is not an object", succeeded(metadata="ours")),
        ("attempt is not a number", succeeded(metadata={"app_id": APP_ID, "order_id": "o-1", "attempt": "first"})),
        ("last_payment_error is not an object", succeeded(last_payment_error="declined")),
    ],
)
def test_malformed_event_is_a_400_and_writes_nothing(handle, name: str, event: dict[str, Any]) -> None:
    assert handle(event) == (WebhookResult.MALFORMED, [])


def test_event_of_a_connected_account_is_not_ours_even_with_our_metadata(handle) -> None:
    event = {**succeeded(), "account": "acct_1Connected"}

    assert handle(event) == (WebhookResult.NOT_OURS, [])


# -- a fulfilment that committed before its step failed is never refunded


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(api_key="sk_test_findings", async_settle_seconds=None) as server:
        server.add_customer(SAMPLE_CUSTOMER)
        yield server


def test_refund_refuses_an_order_that_was_fulfilled(dynamodb: Any, fake: FakeStripe, tables: dict[str, Any]) -> None:
    # Given a paid order whose FulfilOrder committed, then failed past its Retry (a Lambda timeout, say)
    tables["InventoryTable"].put_item(Item={"sku": "MUG-BLUE", "available": 10})
    tables["InventoryTable"].put_item(Item={"sku": "TEA-EARL", "available": 10})
    orders = OrderRecords(dynamodb, "OrdersTable", "InventoryTable")
    order = parse_order(sample_order(orderId=unique("order")))
    orders.claim(order, ExecutionRef("arn:exec", "2026-11-25T12:00:00Z"), NOW)
    orders.begin_attempt(order.order_id, 1, NOW)
    gateway = StripeGateway.connect("sk_test_findings", fake.url, network_retries=0, app_id=APP_ID)
    payment_intent = gateway.create_payment_intent(order, 1, "arn:exec")
    orders.record_payment_intent(order.order_id, 1, payment_intent.id, NOW)
    assert orders.fulfil(order, 1, payment_intent.id, NOW)
    caught = {"Error": "OutOfStock", "Cause": '{"errorMessage": "not enough stock for SKU MUG-BLUE"}'}

    # When RefundPayment runs for it anyway (a redrive, say)
    with pytest.raises(OrderAlreadyFulfilled):
        steps.refund_payment(order, payment_intent.id, caught, stripe=gateway, orders=orders, now=NOW)

    # Then nothing is refunded and the order stays fulfilled
    assert [r for r in fake.refunds.values() if r["payment_intent"] == payment_intent.id] == []
    assert orders.get(order.order_id)["status"] == "fulfilled"


def test_the_state_machine_sends_an_already_fulfilled_order_to_its_receipt() -> None:
    catches = {tuple(c["ErrorEquals"]): c["Next"] for c in ASL["States"]["RefundPayment"]["Catch"]}

    assert catches[("OrderAlreadyFulfilled",)] == "SendReceipt"
    assert list(catches)[-1] == ("States.ALL",)


# -- a Lambda that timed out or ran out of memory (Lambda.Unknown) after its work is retried, not fatal


@pytest.mark.parametrize(
    "state", ["CreatePaymentIntent", "SettleFailedAttempt", "ReconcileAfterTimeout", "FulfilOrder", "RefundPayment"]
)
def test_idempotent_steps_retry_a_function_that_timed_out(state: str) -> None:
    retried = {error for retry in ASL["States"][state]["Retry"] for error in retry["ErrorEquals"]}

    assert {"Lambda.Unknown", "Sandbox.Timedout"} <= retried


def test_a_rejected_start_input_of_any_json_type_reaches_order_rejected() -> None:
    # ResultPath "$.error" cannot be applied to an input that is not an object (States.Runtime)
    accept = ASL["States"]["AcceptOrder"]
    (catch,) = [c for c in accept["Catch"] if c["ErrorEquals"] == ["InvalidOrder"]]

    assert catch["ResultPath"] == "$"
    assert ASL["States"][catch["Next"]]["Parameters"]["detail.$"] == "States.StringToJson($.Cause)"
