"""Where the local runtime failed in ways AWS does not, found by `make reliability`, and fixed there."""

import json
import os
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.core.routing import get_service_router
from moto.sqs.models import Message, sqs_backends

from local_runtime import event_routes
from local_runtime.engine import FAKE_AWS_ENV, LocalCloud, _error, _send_task_success
from local_runtime.event_routes import POLLERS, EventSourceMappings, queue_deletes_under_its_lock
from local_runtime.template import ACCOUNT, REGION


def test_send_task_success_waits_out_an_execution_that_has_just_started() -> None:
    # moto reads every running execution's environment; one started a moment ago has none yet
    calls: list[str] = []

    class Backend:
        def send_task_success(self, task_token: str, outcome: str) -> str:
            calls.append(task_token)
            if len(calls) == 1:
                raise AttributeError("'NoneType' object has no attribute 'callback_pool_manager'")
            return "resumed"

    assert _send_task_success(Backend)(Backend(), "token-1", "{}") == "resumed"
    assert calls == ["token-1", "token-1"]


def test_injected_aws_errors_carry_a_request_id() -> None:
    # moto's interpreter names a failed Lambda or DynamoDB task from the error's request id
    status, headers, body = _error(500, "ServiceException", "injected")

    assert (status, json.loads(body)["__type"]) == (500, "ServiceException")
    assert headers["x-amzn-RequestId"]


def test_lambda_requests_are_routed_before_any_execution_invokes_a_function() -> None:
    # moto builds a service's router on its first request, not thread-safely: 32 executions invoking their first
    # function at once once ended one in States.Runtime ('OperationModel' object has no attribute 'http_trait')
    get_service_router.cache_clear()

    with LocalCloud(stripe_api_base="http://127.0.0.1:9", stripe_api_key="sk_test_x", webhook_signing_secret="whsec_x"):
        assert get_service_router("lambda")._routers


def test_the_queue_of_stripes_events_is_read_five_batches_at_once_through_the_wrapped_invoke() -> None:
    # AWS: "Lambda starts processing five batches at a time with five concurrent invocations of your function"; one
    # poller here made every message on the queue wait for the one before, whichever order it was for
    with mock_aws(), mock.patch.dict(os.environ, FAKE_AWS_ENV):
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for index in range(8):
            sqs.send_message(QueueUrl=url, MessageBody=str(index))
        at_once, most, lock = [0], [0], threading.Lock()

        def invoke(name: str, event: dict[str, Any]) -> tuple[Any, None]:
            with lock:
                at_once[0] += 1
                most[0] = max(most[0], at_once[0])
            time.sleep(0.3)
            with lock:
                at_once[0] -= 1
            return {"batchItemFailures": []}, None

        mapping = {"EventSourceArn": arn, "FunctionName": "reader", "BatchSize": 1}
        template = SimpleNamespace(of_type=lambda kind: {"Source": {"Properties": mapping}}, resolve=lambda p: p)
        mappings = EventSourceMappings(template, invoke)  # type: ignore[arg-type]
        mappings.start()
        try:
            mappings.wait_until_idle(timeout=10)
        finally:
            mappings.stop()

    assert most[0] == POLLERS == 5


def test_a_message_sent_while_another_is_deleted_is_not_lost() -> None:
    # moto's delete rebuilt the queue's list without the lock sends append under: a message sent in between went
    # with the old list (found by the schedules: events put on the bus, never read, not in the dead-letter queue)
    with mock_aws(), mock.patch.dict(os.environ, FAKE_AWS_ENV), queue_deletes_under_its_lock():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="events")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="first")
        (first,) = sqs.receive_message(QueueUrl=url)["Messages"]
        queue = sqs_backends[ACCOUNT][REGION].get_queue("events")
        late = Message("late-one", "late")

        class SentAsTheDeleteEnds(list):  # type: ignore[type-arg]
            def __iter__(self) -> Iterator[Any]:
                yield from list.__iter__(self)
                sender = threading.Thread(target=queue.add_message, args=(late,))
                sender.start()
                sender.join(0.2)  # sent at once, unless the delete holds the queue's lock

        queue._messages = SentAsTheDeleteEnds(queue._messages)
        sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
        time.sleep(0.3)

        assert [m.body for m in queue._messages] == ["late"]


def test_a_message_is_not_read_again_while_its_read_is_under_way_and_comes_again_after_a_failed_one() -> None:
    # AWS: the queue's visibility timeout outlasts any read (six times the function's timeout). Shortened for the
    # local run, a read slower than it had its message read again beside it: every slow read one more, each taking
    # a poller (the schedules' outcomes delivered before the task token waited seconds for one)
    with mock_aws(), mock.patch.dict(os.environ, FAKE_AWS_ENV):
        mapping = {"EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:events", "FunctionName": "reader"}
        resources = {
            "AWS::SQS::Queue": {"Events": {"Properties": {"VisibilityTimeout": 180}}},
            "AWS::Lambda::EventSourceMapping": {"Source": {"Properties": mapping}},
        }
        template = SimpleNamespace(
            of_type=lambda kind: resources.get(kind, {}), resolve=lambda p: p, physical_name=lambda _: "events",
            physical={},
        )  # fmt: skip
        event_routes.deploy(template)  # type: ignore[arg-type]
        reads: list[tuple[float, float]] = []

        def invoke(name: str, event: dict[str, Any]) -> tuple[Any, None]:
            began = time.monotonic()
            time.sleep(1.5 if not reads else 0)  # the first read is slow, and fails
            reads.append((began, time.monotonic()))
            failed = [{"itemIdentifier": r["messageId"]} for r in event["Records"]] if len(reads) == 1 else []
            return {"batchItemFailures": failed}, None

        mappings = EventSourceMappings(template, invoke, failed_visibility_seconds=1)  # type: ignore[arg-type]
        mappings.start()
        try:
            boto3.client("sqs").send_message(QueueUrl=template.physical["Events"], MessageBody="event")
            deadline = time.monotonic() + 10
            while len(reads) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            mappings.wait_until_idle(timeout=5)
        finally:
            mappings.stop()

    (first_began, first_ended), (again, _) = reads
    assert again - first_ended >= 0.9  # a second after the failed read ended; never beside it
