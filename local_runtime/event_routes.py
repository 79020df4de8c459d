"""Amazon EventBridge and SQS from template.yaml on moto: the partner event bus, its rule, the queues, and the
Lambda event source mapping that reads a queue into a function. (Not the archive: moto reads a bus's name from
its ARN's last segment, which for a partner bus, aws.partner/stripe.com/ed_..., is not its name.)

moto delivers a rule's matching events to an SQS target and moves a message to the dead-letter queue after
`maxReceiveCount` receives; the event source mapping is threads here, as Lambda's pollers are in AWS: it
receives up to BatchSize messages, invokes the function with the SQS event (up to `concurrency_of` batches at
once), deletes what succeeded and leaves a reported failure (ReportBatchItemFailures) to come again after the
visibility timeout. moto's queues are made safe for that many threads (`queue_deletes_under_its_lock`).

The queues keep the template's visibility timeout, which is longer than any read (tests/infrastructure holds it
to six times the function's timeout, as AWS advises): a message is never read again while a read of it is under
way. A local run may shorten what follows a failed read (`failed_visibility_seconds`): the message comes again
that long after the read ended, not minutes later.
"""

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import boto3
from moto.events.models import EventsBackend
from moto.sqs.models import Queue as SqsQueue

from local_runtime.template import ACCOUNT, Template

Invoke = Callable[[str, Any], tuple[Any, dict[str, Any] | None]]
# "When messages are available, Lambda starts processing five batches at a time with five concurrent invocations
# of your function" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html): at least five here.
POLLERS = 5


def concurrency_of(mapping: dict[str, Any]) -> int:
    """How many batches of a mapping Lambda invokes at once: its `ScalingConfig.MaximumConcurrency`, "at most"
    that many (the same page), or, without one, the five it starts with."""
    return int((mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") or POLLERS)


def partner_bus_names() -> Any:
    """A patch (not started): AWS names a partner event bus after its event source (aws.partner/stripe.com/...),
    and moto took the last '/' segment of any bus name or ARN as the name."""

    def normalize(backend: EventsBackend, event_bus_arn: str | None) -> str:
        if event_bus_arn is None:
            return "default"
        return event_bus_arn.split(":event-bus/", 1)[-1]

    return mock.patch.object(EventsBackend, "_normalize_event_bus_arn", normalize)


def queue_deletes_under_its_lock() -> Any:
    """A patch (not started): moto's Queue.delete_message rebuilds the queue's message list without the lock its
    add_message appends under, so a message sent while another was deleted could land in the list being replaced,
    and be lost (never received, never in the dead-letter queue). SQS loses no message; here the delete holds the
    lock too."""
    delete = SqsQueue.delete_message

    def delete_message(queue: SqsQueue, receipt_handle: str) -> None:
        with queue._messages_lock:
            delete(queue, receipt_handle)

    return mock.patch.object(SqsQueue, "delete_message", delete_message)


def deploy(template: Template) -> None:
    """Queues (then their redrive policies), event buses and their rules, when their conditions hold."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queues = template.of_type("AWS::SQS::Queue")
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        attributes = {"MessageRetentionPeriod": str(props.get("MessageRetentionPeriod", 345600))}
        attributes["VisibilityTimeout"] = str(props.get("VisibilityTimeout", 30))
        url = sqs.create_queue(QueueName=template.physical_name(logical_id), Attributes=attributes)["QueueUrl"]
        template.physical[logical_id] = url
    for logical_id, queue in queues.items():
        if "RedrivePolicy" in queue["Properties"]:
            policy = template.resolve(queue["Properties"]["RedrivePolicy"])
            sqs.set_queue_attributes(
                QueueUrl=template.physical[logical_id], Attributes={"RedrivePolicy": json.dumps(policy)}
            )
    for logical_id, bus in template.of_type("AWS::Events::EventBus").items():
        props = template.resolve(bus["Properties"])
        if props.get("EventSourceName"):  # what Stripe does when an EventBridge destination is set up
            events.create_partner_event_source(Name=props["EventSourceName"], Account=ACCOUNT)
        events.create_event_bus(
            Name=props["Name"],
            **({"EventSourceName": props["EventSourceName"]} if props.get("EventSourceName") else {}),
        )
        template.physical[logical_id] = props["Name"]
    for logical_id, rule in template.of_type("AWS::Events::Rule").items():
        props = template.resolve(rule["Properties"])
        if "EventBusName" not in props:
            continue  # the schedule and the execution-status rule: nothing delivers to them locally
        name = template.physical_name(logical_id)
        events.put_rule(Name=name, EventBusName=props["EventBusName"], EventPattern=json.dumps(props["EventPattern"]))
        targets = [{key: target[key] for key in ("Id", "Arn", "RetryPolicy", "DeadLetterConfig") if key in target}
                   for target in props["Targets"]]  # fmt: skip
        events.put_targets(Rule=name, EventBusName=props["EventBusName"], Targets=targets)


class EventSourceMappings:
    """Lambda's SQS pollers for the template's AWS::Lambda::EventSourceMapping resources: per mapping, one thread
    receives batches and up to `concurrency_of` it invocations handle them at once (an idle queue costs one receive
    a poll).
    `failed_visibility_seconds`: how long after its read ended a message that was not deleted comes again (None:
    the rest of the queue's visibility timeout, as in AWS)."""

    def __init__(
        self,
        template: Template,
        invoke: Invoke,
        poll_seconds: float = 0.05,
        failed_visibility_seconds: int | None = None,
    ) -> None:
        mappings = template.of_type("AWS::Lambda::EventSourceMapping").values()
        self._mappings = [template.resolve(mapping["Properties"]) for mapping in mappings]
        self._invoke, self._poll_seconds = invoke, poll_seconds
        self._failed_visibility_seconds = failed_visibility_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for props in self._mappings:
            queue_name = props["EventSourceArn"].rsplit(":", 1)[-1]
            url = boto3.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
            thread = threading.Thread(target=self._poll, args=(url, props), name=f"sqs-{queue_name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def wait_until_idle(self, timeout: float) -> None:
        sqs, deadline = boto3.client("sqs"), time.monotonic() + timeout
        urls = [
            sqs.get_queue_url(QueueName=props["EventSourceArn"].rsplit(":", 1)[-1])["QueueUrl"]
            for props in self._mappings
        ]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        while time.monotonic() < deadline:
            counts = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"] for url in urls]
            if all(int(c.get(name, 0)) == 0 for c in counts for name in names):
                return
            time.sleep(self._poll_seconds)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self, queue_url: str, props: dict[str, Any]) -> None:
        sqs = boto3.client("sqs")  # boto3's clients are thread-safe: the invocations share it
        concurrency = concurrency_of(props)
        free = threading.Semaphore(concurrency)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sqs-batch") as invocations:
            while not self._stopping.is_set():
                if not free.acquire(timeout=self._poll_seconds):
                    continue  # every invocation busy
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=int(props.get("BatchSize", 10)),
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])  # fmt: skip
                if not messages:
                    free.release()
                    self._stopping.wait(self._poll_seconds)
                    continue
                invocations.submit(self._handle, sqs, queue_url, props, messages, free)

    def _handle(self, sqs: Any, queue_url: str, props: dict[str, Any], messages: list[dict[str, Any]],
                free: threading.Semaphore) -> None:  # fmt: skip
        try:
            source = {"eventSource": "aws:sqs", "eventSourceARN": props["EventSourceArn"]}
            records = [
                {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                 "attributes": m.get("Attributes", {}), **source}
                for m in messages
            ]  # fmt: skip
            result, error = self._invoke(props["FunctionName"], {"Records": records})
            if error is not None:  # every message of the batch comes again after the visibility timeout
                self._come_again(sqs, queue_url, messages)
                return
            failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
            done = [
                {"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                for m in messages
                if m["MessageId"] not in failed
            ]
            if done:
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
            self._come_again(sqs, queue_url, [m for m in messages if m["MessageId"] in failed])
        finally:
            free.release()

    def _come_again(self, sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
        if self._failed_visibility_seconds is None or not messages:
            return
        seconds = self._failed_visibility_seconds
        entries = [
            {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
            for index, m in enumerate(messages)
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
