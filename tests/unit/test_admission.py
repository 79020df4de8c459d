"""Admission (docs/peak-load.md): a start Step Functions refuses is queued and answered, not failed, and started later
exactly as the merchant API would have started it, named by the order id, so that one order stays one payment."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from local_runtime.engine import LambdaContext
from payments.admission import AdmissionQueue, QueuedStart, start_queued
from payments.errors import AwsUnavailable, DuplicateOrder
from payments.executions import ExecutionRef, Executions
from payments.merchant_api import payment_status, start_payment
from payments.orders import parse_order
from payments.records import OrderRecords, PaymentRecords
from tests.conftest import load_function, sample_order
from tests.unit._support import client_error, unique

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


class Refusing:
    """A Step Functions client that refuses the next `times` starts, as a throttled account does once the SDK's
    own retries are spent (ThrottlingException), or one at its quota of open executions (ExecutionLimitExceeded)."""

    def __init__(self, client: Any, times: int, code: str = "ThrottlingException") -> None:
        self._client, self.times, self._code = client, times, code

    def start_execution(self, **request: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            raise client_error(self._code, "StartExecution")
        return self._client.start_execution(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class NotAsked:
    def __call__(self) -> Any:
        raise AssertionError("the happy path neither queues nor writes the order")


@pytest.fixture
def stepfunctions(aws: None, boto_session: Any) -> tuple[Any, str]:
    client = boto_session.client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/payments"
    return client, client.create_state_machine(name="payments", definition=DEFINITION, roleArn=role)["stateMachineArn"]


@pytest.fixture
def queue(aws: None, boto_session: Any) -> tuple[Any, AdmissionQueue]:
    sqs = boto_session.client("sqs")
    url = sqs.create_queue(QueueName="admission")["QueueUrl"]
    return sqs, AdmissionQueue(lambda: sqs, url)


@pytest.fixture
def orders(dynamodb: Any, tables: dict[str, Any]) -> OrderRecords:
    return OrderRecords(dynamodb, "OrdersTable", "InventoryTable")


def queued_messages(sqs: Any, queue: AdmissionQueue) -> list[QueuedStart]:
    received = sqs.receive_message(QueueUrl=queue._url, MaxNumberOfMessages=10).get("Messages", [])
    return [QueuedStart(m["MessageId"], m["Body"]) for m in received]


def executions_named(stepfunctions: tuple[Any, str]) -> dict[str, dict[str, Any]]:
    client, arn = stepfunctions
    listed = client.list_executions(stateMachineArn=arn)["executions"]
    return {e["name"]: json.loads(client.describe_execution(executionArn=e["executionArn"])["input"]) for e in listed}


def test_an_order_step_functions_accepts_starts_at_once_and_queues_nothing(stepfunctions, queue) -> None:
    # Given Step Functions takes starts: the happy path of every order outside a burst
    client, arn = stepfunctions
    order = sample_order(orderId=unique("order"))

    order_id, execution_arn = start_payment(
        order, executions=Executions(client, arn), admission=NotAsked(), orders=NotAsked(), now=NOW
    )

    # Then one StartExecution, named by the order id; the queue and the orders table are not even made
    assert execution_arn is not None and execution_arn.endswith(f":{order_id}")
    assert list(executions_named(stepfunctions)) == [order_id]


@pytest.mark.parametrize("refusal", ["ThrottlingException", "ExecutionLimitExceeded", "ServiceUnavailable"])
def test_a_start_step_functions_refuses_is_queued_answered_and_told_apart_from_an_unknown_order(
    stepfunctions, queue, orders, dynamodb, refusal: str
) -> None:
    # Given StartExecution refuses the start, after the SDK's own retries
    client, arn = stepfunctions
    sqs, admission = queue
    order = sample_order(orderId=unique("order"))

    order_id, execution_arn = start_payment(
        order, executions=Executions(Refusing(client, 1, refusal), arn), admission=lambda: admission,
        orders=lambda: orders, now=NOW,
    )  # fmt: skip

    # Then the order waits in the queue, as validated, and its status says so; nothing started yet
    assert execution_arn is None
    assert [json.loads(m.body) for m in queued_messages(sqs, admission)] == [parse_order(order).to_dict()]
    assert executions_named(stepfunctions) == {}
    payments = PaymentRecords(dynamodb, "PaymentsTable")
    status = payment_status(order_id, orders=orders, payments=payments, stripe=None)  # type: ignore[arg-type]
    assert status == {"orderId": order_id, "status": "queued", "amount": 2500, "currency": "usd"}
    assert payment_status("never-heard-of", orders=orders, payments=payments, stripe=None) is None  # type: ignore[arg-type]


def test_a_start_that_neither_step_functions_nor_sqs_takes_is_unavailable_and_records_nothing(
    stepfunctions, aws, boto_session, orders
) -> None:
    client, arn = stepfunctions
    sqs = boto_session.client("sqs")
    gone = AdmissionQueue(lambda: sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    order = sample_order(orderId=unique("order"))

    with pytest.raises(AwsUnavailable):  # the API answers 503 and the merchant's backend retries
        start_payment(order, executions=Executions(Refusing(client, 1), arn), admission=lambda: gone,
                      orders=lambda: orders, now=NOW)  # fmt: skip

    assert orders.get(order["orderId"]) is None


def test_queued_orders_start_as_the_api_would_have_and_a_second_message_for_one_changes_nothing(
    stepfunctions, queue
) -> None:
    # Given two queued orders, one of them queued twice (the merchant's backend retried its request), and one
    # whose execution was started meanwhile with another input (ExecutionAlreadyExists)
    client, arn = stepfunctions
    first, second, raced = (sample_order(orderId=unique("order")) for _ in range(3))
    Executions(client, arn).start(raced["orderId"], {**parse_order(raced).to_dict(), "amount": 999})
    messages = [QueuedStart(f"m{n}", json.dumps(parse_order(o).to_dict()))
                for n, o in enumerate([first, second, first, raced])]  # fmt: skip

    retry = start_queued(messages, Executions(client, arn))

    # Then each order has one execution, named by its id, with its own input, and no message comes again
    assert retry == []
    started = executions_named(stepfunctions)
    assert sorted(started) == sorted([first["orderId"], second["orderId"], raced["orderId"]])
    assert started[first["orderId"]] == parse_order(first).to_dict()
    assert started[raced["orderId"]]["amount"] == 999  # the one payment of that order is the other start's


def test_a_throttled_drain_leaves_the_rest_of_its_batch_queued(stepfunctions) -> None:
    client, arn = stepfunctions
    messages = [QueuedStart(f"m{n}", json.dumps(sample_order(orderId=unique("order")))) for n in range(3)]

    retry = start_queued(messages, Executions(Refusing(client, 1), arn))

    # The first start was refused: the other two would be too, and each refusal spends the quota they wait for
    assert retry == ["m0", "m1", "m2"]
    assert executions_named(stepfunctions) == {}


def test_a_message_that_can_never_start_goes_on_to_the_dead_letter_queue_without_holding_others(stepfunctions) -> None:
    client, arn = stepfunctions
    valid = sample_order(orderId=unique("order"))
    messages = [QueuedStart("garbled", "{not json"), QueuedStart("invalid", json.dumps({"orderId": "x"})),
                QueuedStart("valid", json.dumps(valid))]  # fmt: skip

    retry = start_queued(messages, Executions(client, arn))

    # Reported failed (after maxReceiveCount receives the queue moves them to its dead-letter queue, alarmed)
    assert retry == ["garbled", "invalid"]
    assert list(executions_named(stepfunctions)) == [valid["orderId"]]


def test_the_first_execution_claims_a_queued_order_and_one_order_stays_one_payment(orders) -> None:
    order = parse_order(sample_order(orderId=unique("order")))
    first = ExecutionRef(f"arn:aws:states:us-east-1:123456789012:execution:payments:{order.order_id}", "t1")

    assert orders.note_queued(order, NOW) is True
    orders.claim(order, first, NOW)
    assert orders.note_queued(order, NOW) is False  # a late queued mark never overwrites a claimed order

    record = orders.get(order.order_id)
    assert (record["status"], record["executionId"]) == ("received", first.arn)
    with pytest.raises(DuplicateOrder):
        orders.claim(order, ExecutionRef(first.arn + "-again", "t2"), NOW)


def test_the_drain_handler_reports_the_messages_to_try_again(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_function("start_queued_payments")
    monkeypatch.setattr(module, "executions", lambda: "the executions adapter")
    monkeypatch.setattr(module, "start_queued", lambda messages, executions: [messages[1].message_id])
    batch = {"Records": [{"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": "{}"} for n in range(3)]}

    answer = module.lambda_handler(batch, LambdaContext("StartQueuedPaymentsFunction", "arn:x", "req-1"))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
