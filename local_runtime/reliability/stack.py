"""The local deployment a reliability run drives and watches: FakeStripe and a LocalCloud wired together."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
from boto3.dynamodb.types import TypeDeserializer

from local_runtime.engine import Fault, LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.reliability.courier import Courier
from local_runtime.reliability.destinations import StripesDestinations
from local_runtime.reliability.reconciler import Sweeper
from local_runtime.reliability.settings import API_KEY, CUSTOMER, SIGNING_SECRET, STOCK, WEBHOOK_PATH
from local_runtime.scenarios import LOCAL_TIMING, authorised_payment_intents, capture_method_of, seed_stack
from local_runtime.template import ACCOUNT, REGION

_deserialize = TypeDeserializer().deserialize


@contextlib.contextmanager
def local_stack(parameters: dict[str, str], *, async_settle_seconds: float = 0.5) -> Iterator[Stack]:
    """FakeStripe and a LocalCloud wired together, quiet."""
    logging.raiseExceptions = False  # Powertools' one Logger, shared by threads here, may race on a format
    with (
        # One Metrics object serves every thread here; at 100 values it prints them, disabled or not.
        mock.patch("aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch.print", create=True),
        FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, async_settle_seconds=async_settle_seconds) as fake,
        LocalCloud(
            stripe_api_base=fake.url,
            stripe_api_key=API_KEY,
            webhook_signing_secret=SIGNING_SECRET,
            parameters=parameters,
            log_stream=io.StringIO(),
            **LOCAL_TIMING,
        ) as cloud,
    ):
        seed_stack(cloud, fake, STOCK, (CUSTOMER,))
        stack = Stack(cloud, fake)
        try:
            yield stack
        finally:
            stack.close()


class Stack:
    """One local deployment, with the eyes and hands a reliability run needs.

    Every Stripe event passes through `courier.capture` (FakeStripe's drop predicate): it learns
    which order each PaymentIntent belongs to, and delivers the events of orders it has a plan for.
    What the StripeEvents function reads from the queue goes to `courier.messages_read`, and what the one
    path for Stripe's events answered each (`payments.ingress.receive`) is kept in `answers`.
    """

    def __init__(self, cloud: LocalCloud, fake: FakeStripe) -> None:
        self.cloud = cloud
        self.stripe = fake
        self.sfn = boto3.client("stepfunctions")
        self.dynamodb = boto3.client("dynamodb")
        self.courier = Courier(self, cloud.url_of(WEBHOOK_PATH))
        self.destinations = StripesDestinations(self.courier, cloud.url_of(WEBHOOK_PATH))
        self.destinations.add_to(fake)
        fake.set_delivery(drop=self.courier.capture)
        self.watcher = ExecutionWatcher()
        self.hooks: dict[str, Callable[[str, dict[str, Any]], None]] = {}  # order id -> before_invoke
        # order id -> what runs once a function answered (its name, event and result), before the workflow goes on
        self.after_hooks: dict[str, Callable[[str, dict[str, Any], Any], None]] = {}
        self.stripe_hooks: dict[str, Callable[[str, str], None]] = {}  # order id -> before_request
        self.executions_started = 0
        self._lock = threading.Lock()
        cloud.before_invoke = self._before_invoke
        fake.before_request = self._before_request
        # Every function error, kept: a webhook's 500 is reported with what raised.
        self.function_errors: list[tuple[str, str, dict[str, Any]]] = []  # (function, order id, error)
        self._function_faults: list[Fault] = []
        invoke = cloud.invoke_function

        def invoke_function(name: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
            from_queue = isinstance(event, dict) and isinstance(event.get("Records"), list)  # Stripe's events, by bus
            if from_queue:
                self.courier.reading(event["Records"])
            result, error = invoke(name, event)
            if error is None and self._function_fault(name, event) is not None:
                result, error = None, {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out (injected)"}
            if from_queue:
                self.courier.messages_read(event["Records"], result, error)
            if error is None and (after := self.after_hooks.get(_order_id_of(event))) is not None:
                after(name, event, result)
            if error is not None:
                order_id = _order_id_of(event) or self._order_id_in_body(event)
                with self._lock:
                    self.function_errors.append((name, order_id, error))
            return result, error

        cloud.invoke_function = invoke_function  # type: ignore[method-assign]
        # What the one path for Stripe's events answered each event, by whichever way it came in: a webhook's answer
        # is its HTTP status too, a queue message's is only this.
        self.answers: dict[str, list[str]] = {}  # event id -> "resumed", "duplicate", ..., "raised AwsUnavailable"
        from payments import ingress  # the layer's package, on the path once the stack is deployed

        self._answering = mock.patch.object(ingress, "receive", self._answering_to(ingress.receive))
        self._answering.start()
        self.sweeper = Sweeper(cloud.invoke_function)
        self._events_read, self._authorised = 0, set[str]()
        # A client that gave up waiting (FakeStripe's own delivery waits 5 s) makes the HTTP API's reply a
        # BrokenPipeError, printed with its traceback; the client has recorded its timeout already.
        if cloud._gateway is not None:
            cloud._gateway.handle_error = lambda request, client_address: None  # type: ignore[method-assign]

    def close(self) -> None:
        self.watcher.stop()
        self.courier.stop()
        self.destinations.close()
        self._answering.stop()
        self.stripe.set_delivery()
        self.stripe.before_request = None
        self.cloud.before_invoke = None

    def start(self, order: Any, name: str) -> str:
        arn = self.sfn.start_execution(
            stateMachineArn=self.cloud.state_machine_arn, name=name, input=json.dumps(order)
        )["executionArn"]
        with self._lock:
            self.executions_started += 1
        return arn

    def fail_function(self, fault: Fault) -> None:
        """A function that does its work and then times out (Sandbox.Timedout), for the invocations `fault.match`
        accepts (their payload as JSON), `fault.times` times."""
        with self._lock:
            self._function_faults.append(fault)

    def withdraw_function_fault(self, fault: Fault) -> None:
        with self._lock:
            self._function_faults = [f for f in self._function_faults if f is not fault]

    def _function_fault(self, function: str, event: Any) -> Fault | None:
        with self._lock:
            if not self._function_faults:
                return None
            body = json.dumps(event)
            fault = next(
                (
                    f for f in self._function_faults
                    if f.times > 0 and (f.function is None or f.function in function)
                    and (f.match is None or f.match(body))
                ),
                None,
            )  # fmt: skip
            if fault is not None:
                fault.times -= 1
            return fault

    def execution(self, arn: str) -> tuple[str, list[dict[str, Any]]]:
        """Status and history of an execution, read from moto's backend in this process: the same events
        GetExecutionHistory returns, without serialising them (25 ms an execution, a minute at a thousand)."""
        execution = next(e for e in _executions() if e.execution_arn == arn)
        events = list(execution.to_history_output()["events"])
        return str(execution.status), [{**e, "type": str(getattr(e["type"], "value", e["type"]))} for e in events]

    @property
    def capture_method(self) -> str:
        return capture_method_of(self.cloud)

    def authorised(self) -> set[str]:
        """The PaymentIntents Stripe has authorised so far (`scenarios.authorised_payment_intents`), its events read
        once each."""
        with self._lock:
            events = self.stripe.events[self._events_read :]
            self._events_read += len(events)
            self._authorised |= authorised_payment_intents(events)
            return set(self._authorised)

    def payment_intents(self, order_id: str) -> list[dict[str, Any]]:
        pis = [self.stripe.payment_intents.get(pi_id) for pi_id in self.courier.payment_intents_of(order_id)]
        return [json.loads(json.dumps(pi)) for pi in pis if pi is not None]

    def order(self, order_id: str) -> dict[str, Any]:
        return self.item("OrdersTable", {"orderId": order_id})

    def stock(self) -> dict[str, int]:
        """What is available of each SKU the stack was stocked with."""
        inventory = self.cloud.table("InventoryTable")
        return {sku: int(inventory.get_item(Key={"sku": sku})["Item"]["available"]) for sku in STOCK}

    def item(self, logical_id: str, key: dict[str, str]) -> dict[str, Any]:
        """One item, as plain JSON. A low-level client: a boto3 resource costs ~20 ms to build, each time."""
        response = self.dynamodb.get_item(
            TableName=self.cloud.template.physical[logical_id],
            Key={name: {"S": value} for name, value in key.items()},
            ConsistentRead=True,
        )
        item = {name: _deserialize(value) for name, value in (response.get("Item") or {}).items()}
        return json.loads(json.dumps(item, default=_plain))

    def answers_to(self, event_ids: set[str]) -> dict[str, list[str]]:
        with self._lock:
            return {event_id: list(self.answers[event_id]) for event_id in event_ids if event_id in self.answers}

    def dead_letters(self) -> list[str]:
        """The Stripe events in the queue's dead-letter queue (the first 10 of each read; read again, they stay)."""
        url = self.cloud.template.physical["StripeEventsDeadLetterQueue"]
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        count = int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"].get(
                "ApproximateNumberOfMessages", 0
            )
        )
        found = []
        for message in messages:
            detail = json.loads(message["Body"]).get("detail") or {}
            event_id = str(detail.get("id"))
            found.append(f"{detail.get('type')} {event_id} (order {self.courier.order_of_event(event_id) or '?'})")
        return found + [f"and {count - len(found)} more"] * (count > len(found))

    def _answering_to(self, receive: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        def answering(stripe_event: dict[str, Any]) -> Any:
            event_id = str(stripe_event.get("id")) if isinstance(stripe_event, dict) else ""
            try:
                result = receive(stripe_event)
            except Exception as failure:
                self._answered(event_id, f"raised {type(failure).__name__}")
                raise
            self._answered(event_id, str(getattr(result, "value", result)))
            return result

        return answering

    def _answered(self, event_id: str, answer: str) -> None:
        with self._lock:
            self.answers.setdefault(event_id, []).append(answer)

    def _order_id_in_body(self, event: Any) -> str:
        """The order a webhook request is about (an HTTP API event carrying a Stripe event, snapshot or thin)."""
        try:
            body = json.loads(event.get("body") or "{}")
        except (ValueError, TypeError, AttributeError):
            return ""
        if not isinstance(body, dict):
            return ""
        return self.courier.order_of_event(str(body.get("id"))) or _order_id_in_snapshot(body)

    def _before_invoke(self, logical_id: str, event: Any) -> None:
        hook = self.hooks.get(_order_id_of(event))
        if hook is not None:
            hook(logical_id, event)

    def _before_request(self, method: str, path: str, raw: str) -> None:
        if method != "POST" or not path.endswith("/cancel"):
            return
        pi_id = path.split("/")[3]
        hook = self.stripe_hooks.get(self.courier.order_of(pi_id) or "")
        if hook is not None:
            hook(method, path)


def _order_id_of(event: Any) -> str:
    if not isinstance(event, dict):
        return ""
    order = event.get("order")
    order_id = event.get("orderId") or (order.get("orderId") if isinstance(order, dict) else None)
    return order_id if isinstance(order_id, str) else ""


def _order_id_in_snapshot(body: dict[str, Any]) -> str:
    try:
        return str(body["data"]["object"]["metadata"]["order_id"])
    except (TypeError, KeyError):
        return ""


def _plain(value: Any) -> Any:
    return int(value) if value == int(value) else float(value)


def _executions() -> list[Any]:
    """Every execution in moto's Step Functions backend, in this process."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return list(stepfunctions_parser_backends[ACCOUNT][REGION]._get_executions())


class ExecutionWatcher:
    """One poller for every execution a run waits on.

    It reads the statuses from moto's Step Functions backend in this process: describe_execution per
    waiter scans every execution (quadratic at a thousand), and ListExecutions filtered on RUNNING
    cannot be paged while executions finish (the page token names an execution that is no longer in it).
    """

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reliability-watcher", daemon=True)
        self._thread.start()

    def wait(self, arn: str, timeout: float) -> bool:
        with self._lock:
            done = self._waiting.setdefault(arn, threading.Event())
        return done.wait(timeout)

    def wait_all(self, arns: list[str], timeout: float) -> list[bool]:
        with self._lock:
            events = [self._waiting.setdefault(arn, threading.Event()) for arn in arns]
        deadline = time.monotonic() + timeout
        return [event.wait(max(0.0, deadline - time.monotonic())) for event in events]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @staticmethod
    def statuses() -> dict[str, str]:
        """Every execution's status; one being started this instant has none yet (it is about to run)."""
        return {e.execution_arn: e.status for e in _executions() if e.exec_status is not None}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                waiting = {arn: event for arn, event in self._waiting.items() if not event.is_set()}
            if not waiting:
                continue
            statuses = self.statuses()
            for arn, event in waiting.items():
                if statuses.get(arn, "RUNNING") != "RUNNING":
                    event.set()
