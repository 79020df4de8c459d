"""The payment stack from template.yaml on one machine: no Docker, no network, no AWS account.

AWS is moto with its Step Functions interpreter running the real ASL (sped up while a LocalCloud
is open: `_fast_interpreter`); each Lambda invoke runs the function's real handler in this process,
with the environment the template gives it; the HTTP API is a small server on 127.0.0.1 that turns
requests into payload-2.0 events.
"""

import base64
import contextlib
import copy
import functools
import importlib.util
import io
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import types
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
from botocore.credentials import Credentials
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import BaseResponse
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_operator_type import (
    ComparisonOperatorType,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison_variable import ComparisonVariable
from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_dynamodb
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client, json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from local_runtime import event_routes
from local_runtime.event_routes import EventSourceMappings
from local_runtime.quotas import Quotas, Throttle
from local_runtime.sigv4 import iam_denial
from local_runtime.template import REGION, FunctionSpec, Template

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# moto logs every caught state failure at ERROR, and Powertools warns of empty metrics: noise here.
logging.getLogger("moto").setLevel(logging.CRITICAL)
warnings.filterwarnings("ignore", message="No application metrics to publish")
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Invocation:
    function: str
    started: float
    seconds: float
    error: str | None


class LocalCloud:
    """Deploy template.yaml onto moto and run it; a context manager."""

    def __init__(
        self,
        *,
        stripe_api_base: str,
        stripe_api_key: str,
        webhook_signing_secret: str,
        parameters: dict[str, str] | None = None,
        stack_name: str = "stripe-payments",
        log_stream: io.TextIOBase | None = None,
        retry_seconds_scale: float = 1.0,
        queue_visibility_seconds: int | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        """`retry_seconds_scale` shortens every ASL Retry's wait (0.1: a tenth), so that a test can exhaust a
        step's retries and park it in seconds; the ASL and the order of events are unchanged.
        `queue_visibility_seconds` shortens the wait of a queue message whose read failed: it comes again that long
        after the read ended (`event_routes.EventSourceMappings`), not after the template's visibility timeout.
        `quotas` (local_runtime/quotas.py; None: no quota) throttles StartExecution, SendTaskSuccess and the writes to
        each DynamoDB item as AWS does beyond them; give the local Stripe `quotas.stripe_limits()` too."""
        self.template = Template(stack_name, {"StripeApiBase": stripe_api_base, **(parameters or {})})
        self._credentials = {"api_key": stripe_api_key, "webhook_signing_secret": webhook_signing_secret}
        self._log_stream = log_stream
        self._retry_seconds_scale = retry_seconds_scale
        self._queue_visibility_seconds = queue_visibility_seconds  # None: the template's timeout
        self.quotas = quotas
        self._event_source_mappings: EventSourceMappings | None = None
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._specs: dict[str, FunctionSpec] = {}
        self.aws = AwsTraffic()
        self._patches: list[Any] = []  # moto and what the local runtime changes in it, while open
        self._gateway: ThreadingHTTPServer | None = None
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self.state_machine_arn = ""
        self.api_url = ""
        # Called with (logical id, event) before each invoke: lets a scenario stage a race.
        self.before_invoke: Callable[[str, Any], None] | None = None

    # -- deploy ---------------------------------------------------------------------------------

    def __enter__(self) -> "LocalCloud":
        self._patches = [
            mock.patch.dict(os.environ, FAKE_AWS_ENV),
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}),
            mock.patch.object(LambdaSimpleBackend, "invoke", self._dispatch_invoke),
            mock.patch.object(BaseResponse, "call_action", self.aws.wrap(BaseResponse.call_action)),
            mock.patch.object(
                StepFunctionsParserBackend, "send_task_success", _send_task_success(StepFunctionsParserBackend)
            ),
            mock.patch.object(ComparisonVariable, "_eval_body", _fail_on_missing_path(ComparisonVariable._eval_body)),
            *_fast_interpreter(),
            mock.patch.object(retrier_decl, "time", _ScaledSleep(self._retry_seconds_scale)),
            event_routes.partner_bus_names(),
            event_routes.queue_deletes_under_its_lock(),
        ]
        for patch in self._patches:
            patch.start()
        try:
            self._deploy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._event_source_mappings:
            self._event_source_mappings.stop()
        if self._gateway:
            self._gateway.shutdown()
            self._gateway.server_close()
        for patch in reversed(self._patches):
            patch.stop()
        self._patches = []

    def _deploy(self) -> None:
        template = self.template
        dynamodb = boto3.client("dynamodb")
        for logical_id, table in template.of_type("AWS::DynamoDB::Table").items():
            props = table["Properties"]
            name = template.physical_name(logical_id)
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode=props["BillingMode"],
            )
            if "TimeToLiveSpecification" in props:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
            template.physical[logical_id] = name
        if self.quotas is not None:
            self.aws.throttle = Throttle(self.quotas, self.partition_keys())
        for logical_id in template.of_type("AWS::SecretsManager::Secret"):
            secret = boto3.client("secretsmanager").create_secret(
                Name=template.physical_name(logical_id), SecretString=json.dumps(self._credentials)
            )
            template.physical[logical_id] = secret["ARN"]

        event_routes.deploy(template)

        for layer in template.of_type("AWS::Serverless::LayerVersion").values():
            path = str(template.path.parent / layer["Properties"]["ContentUri"])  # Lambda's /opt/python
            if path not in sys.path:
                sys.path.insert(0, path)
        self._specs = template.functions()
        for spec in self._specs.values():
            os.environ.update(spec.environment)  # one process hosts every function: the union of their settings
        sender = os.environ.get("RECEIPT_SENDER")
        if sender:
            boto3.client("sesv2").create_email_identity(EmailIdentity=sender)
        self._reset_function_caches()
        self._handlers = {spec.name: _load_handler(spec) for spec in self._specs.values()}
        from payments.observability import metrics

        # Lambda imports the module with the function's environment; this process may have imported it before any
        # stack's (a unit test), leaving no namespace: Powertools then fails its flush at 100 values, disabled or not.
        metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
        if self._log_stream is not None:
            from payments.observability import logger

            logger.registered_handler.setStream(self._log_stream)  # type: ignore[attr-defined]

        (logical_id,) = template.of_type("AWS::Serverless::StateMachine")
        name, definition = template.state_machine(logical_id)
        role = f"arn:aws:iam::{template.resolve({'Ref': 'AWS::AccountId'})}:role/{name}-role"
        self.state_machine_arn = boto3.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        # moto builds a service's request router on its first request, and not thread-safely: executions invoking
        # their first function at once could read botocore's OperationModel where moto's belongs ("no attribute
        # 'http_trait'", a States.Runtime in AcceptOrder). Deploying has made the other services' first requests.
        boto3.client("lambda").list_functions()
        self._start_gateway()
        # Looked up at each call: a harness that wraps `invoke_function` sees the queue's invocations too.
        self._event_source_mappings = EventSourceMappings(
            template, lambda name, event: self.invoke_function(name, event),
            failed_visibility_seconds=self._queue_visibility_seconds,
        )  # fmt: skip
        self._event_source_mappings.start()

    def partition_keys(self) -> dict[str, str]:
        """Each deployed table's name -> its partition (hash) key attribute, from the template."""
        return {
            self.template.physical[logical_id]: next(
                k["AttributeName"] for k in table["Properties"]["KeySchema"] if k["KeyType"] == "HASH"
            )
            for logical_id, table in self.template.of_type("AWS::DynamoDB::Table").items()
            if logical_id in self.template.physical
        }

    def wait_for_event_queues(self, timeout: float = 10.0) -> None:
        """Until every queue's messages have been read and handled (or the timeout passes)."""
        if self._event_source_mappings:
            self._event_source_mappings.wait_until_idle(timeout)

    def put_partner_event(self, entry: dict[str, Any]) -> str:
        """What a partner (Stripe) does to its event source: an event onto the bus associated with it. Returns the
        id EventBridge gave it (the `id` of the envelope a rule's target receives)."""
        (bus,) = self.template.of_type("AWS::Events::EventBus")
        answer = boto3.client("events").put_events(Entries=[{**entry, "EventBusName": self.template.physical[bus]}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {answer['Entries']}")
        return str(answer["Entries"][0]["EventId"])

    @contextlib.contextmanager
    def parameters_overridden(self, **parameters: str) -> Iterator[None]:
        """The functions as `sam deploy --parameter-overrides` would leave them: each reads the new values from its
        environment at its next cold start. The rest of the stack (the state machine's definition, the queues) keeps
        what it was deployed with."""
        saved = dict(self.template.parameters)
        self.template.parameters.update(parameters)
        environment = {k: v for spec in self.template.functions().values() for k, v in spec.environment.items()}
        try:
            with mock.patch.dict(os.environ, environment):
                self._reset_function_caches()
                yield
        finally:
            self.template.parameters.clear()
            self.template.parameters.update(saved)
            self._reset_function_caches()

    @staticmethod
    def _reset_function_caches() -> None:
        from aws_lambda_powertools.utilities import parameters

        from payments import adapters, config

        config.settings.cache_clear()
        for cached in (adapters._dynamodb, adapters.payment_records, adapters.order_records, adapters.task_tokens,
                       adapters.mailer, adapters._stripe_gateway, adapters.stripe_budget, adapters.admission_queue,
                       adapters.executions, adapters.recovery):  # fmt: skip
            cached.cache_clear()
        parameters.clear_caches()

    # -- Lambda ---------------------------------------------------------------------------------

    def _dispatch_invoke(
        self, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":  # Lambda queues it and answers 202 at once
            threading.Thread(target=self.invoke_function, args=(name, event), name=f"async-{name}", daemon=True).start()
            return b""
        result, error = self.invoke_function(name, event)
        if error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error).encode()
        return json.dumps(result).encode()

    def invoke_function(self, name: str, event: Any) -> tuple[Any, dict[str, Any] | None]:
        """Run one function's handler as Lambda would. Returns (result, error payload or None)."""
        handler = self._handlers.get(name) or self._handlers.get(self.template.physical_name(name))
        if handler is None:
            raise KeyError(f"no function {name} in {self.template.path.name}")
        spec = next(s for s in self._specs.values() if s.name in (name, self.template.physical_name(name)))
        context = LambdaContext(spec.name, spec.arn, str(uuid.uuid4()))
        if self.before_invoke is not None:
            self.before_invoke(spec.logical_id, event)
        started = time.monotonic()
        result, error = None, None
        try:
            result = handler(event, context)
        except Exception as failure:  # noqa: BLE001 - Lambda reports any exception as a function error
            error = {
                "errorType": type(failure).__name__,
                "errorMessage": str(failure),
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(failure.__traceback__)[-3:],
            }
        with self._lock:
            self.invocations.append(
                Invocation(spec.logical_id, started, time.monotonic() - started, error and error["errorType"])
            )
        return result, error

    # -- HTTP API -------------------------------------------------------------------------------

    def _start_gateway(self) -> None:
        routes = [
            (route, _route_pattern(route.path), spec.name)
            for spec in self._specs.values()
            for route in spec.http_routes
        ]
        credentials = Credentials(FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"], FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                                  FAKE_AWS_ENV["AWS_SESSION_TOKEN"])  # fmt: skip
        cloud = self

        class Gateway(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                path = self.path.split("?", 1)[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                found = next(
                    ((route, match, function) for route, pattern, function in routes
                     if route.method == self.command and (match := pattern.fullmatch(path))),
                    None,
                )  # fmt: skip
                if found is None:
                    return self._reply(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
                route, match, function = found
                if route.iam:
                    url = f"http://{self.headers.get('Host')}{self.path}"
                    denial = iam_denial(self.command, url, dict(self.headers), body, credentials, REGION)
                    if denial is not None:
                        message = json.dumps({"message": denial}).encode()
                        return self._reply(403, {"Content-Type": "application/json"}, message)
                event = http_api_event(self.command, self.path, self.headers, body)
                event["routeKey"] = event["requestContext"]["routeKey"] = f"{route.method} {route.path}"
                if match.groupdict():
                    event["pathParameters"] = match.groupdict()
                result, error = cloud.invoke_function(function, event)
                if error is not None or not isinstance(result, dict):
                    return self._reply(
                        500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}'
                    )
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
                self._reply(int(result.get("statusCode", 200)), result.get("headers") or {}, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
        self._gateway.daemon_threads = True
        threading.Thread(target=self._gateway.serve_forever, args=(0.05,), daemon=True, name="local-http-api").start()
        self.api_url = f"http://127.0.0.1:{self._gateway.server_address[1]}"

    def url_of(self, path: str) -> str:
        return self.api_url + path

    # -- what users do with the AWS CLI ---------------------------------------------------------

    def start_payment(self, order: dict[str, Any], name: str | None = None) -> str:
        return boto3.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name or str(order["orderId"]), input=json.dumps(order)
        )["executionArn"]

    def wait_for(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        client = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            execution = client.describe_execution(executionArn=execution_arn)
            if execution["status"] in FINAL_STATUSES:
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still {execution['status']} after {timeout}s")
            time.sleep(0.05)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        client = boto3.client("stepfunctions")
        return client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def table(self, logical_id: str) -> Any:
        return boto3.resource("dynamodb").Table(self.template.physical[logical_id])


@dataclass
class Fault:
    service: str  # boto3 service name: dynamodb, stepfunctions, secretsmanager, sesv2, lambda
    action: str  # API action: UpdateItem, SendTaskSuccess, ...
    code: str  # error code the client sees, e.g. ProvisionedThroughputExceededException
    status: int = 400
    times: int = 1
    match: Callable[[str], bool] | None = None  # only requests whose body it accepts (one order's, say)
    after_commit: bool = False  # the request takes effect, then its answer is lost to this error
    function: str | None = None  # Lambda Invoke: only the invocations of a function whose name holds this


class AwsTraffic:
    """Every AWS request the stack makes, counted by (service, action), with faults on demand.

    It also makes moto behave as AWS does where the workflow depends on it: DynamoDB applies
    one request at a time, and a task token that has been used is refused (TaskTimedOut). With a
    `throttle` (LocalCloud's `quotas`), requests beyond a quota are refused as AWS refuses them.
    """

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.throttled: Counter[tuple[str, str]] = Counter()
        self.throttle: Throttle | None = None
        self.faults_fired: Counter[tuple[str, str]] = Counter()
        self._faults: list[Fault] = []
        self._used_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._dynamodb = threading.Lock()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault: Fault) -> None:
        """Withdraw one injected fault, fired or not."""
        with self._lock:
            self._faults = [f for f in self._faults if f is not fault]

    def wrap(self, call_action: Callable[[Any], Any]) -> Callable[[Any], Any]:
        traffic = self

        def call(response: Any) -> Any:
            service, action = response.boto3_service_name, response._get_action()
            with traffic._lock:
                traffic.calls[(service, action)] += 1
                fault = next(
                    (
                        f
                        for f in traffic._faults
                        if (f.service, f.action) == (service, action)
                        and (f.function is None or f.function in str(getattr(response, "path", "")))
                        and (f.match is None or f.match(_body(response)))
                    ),
                    None,
                )
                if fault is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        traffic._faults.remove(fault)
                    traffic.faults_fired[(service, action)] += 1
            if fault is not None and not fault.after_commit:
                return _error(fault.status, fault.code, "injected by the local runtime")
            refused = traffic._throttled(service, action, response) if traffic.throttle else None
            if refused is not None:
                with traffic._lock:
                    traffic.throttled[(service, action)] += 1
                return refused
            if service == "stepfunctions" and action == "SendTaskSuccess":
                result = traffic._send_task_success_once(call_action, response)
            elif service == "dynamodb":
                with traffic._dynamodb:
                    result = call_action(response)
            else:
                result = call_action(response)
            if fault is not None:
                return _error(fault.status, fault.code, "injected by the local runtime after the request took effect")
            return result

        return call

    def _throttled(self, service: str, action: str, response: Any) -> tuple[int, dict[str, str], str] | None:
        """The answer AWS gives a request beyond its quota, or None to let it through."""
        assert self.throttle is not None
        if service == "stepfunctions":
            if self.throttle.admit_step_functions(action):
                return None
            return _error(400, "ThrottlingException", "Rate exceeded")
        if service != "dynamodb" or action not in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"):
            return None
        if action != "TransactWriteItems":
            table = response._get_param("TableName")
            item = response._get_param("Item" if action == "PutItem" else "Key") or {}
            if not self.throttle.throttled_items([(table, item)], units=1)[0]:
                return None
            reason = {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": _table_arn(table)}
            code = "ProvisionedThroughputExceededException"
            return _error(400, code, PARTITION_THROTTLED, ThrottlingReasons=[reason])
        writes: list[tuple[str, dict[str, Any]] | None] = []
        for entry in response._get_param("TransactItems") or []:
            ((kind, operation),) = entry.items()
            target = {"Put": operation.get("Item"), "ConditionCheck": None}.get(kind, operation.get("Key"))
            writes.append((operation.get("TableName"), target) if target else None)
        short = self.throttle.throttled_items(writes, units=2)  # a transactional write is two write units
        if not any(short):
            return None
        throttled = {"Code": "ThrottlingError", "Message": TRANSACTION_THROTTLED}
        reasons = [throttled if refused else {"Code": "None"} for refused in short]
        codes = ", ".join(r["Code"] for r in reasons)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
        return _error(400, "TransactionCanceledException", message, CancellationReasons=reasons)

    def _send_task_success_once(self, call_action: Callable[[Any], Any], response: Any) -> Any:
        token = response._get_param("taskToken")
        with self._lock:
            if token in self._used_tokens:
                return _error(400, "TaskTimedOut", "Task Timed Out: the task token has been used")
        result = call_action(response)
        if int(result[0]) == 200:
            with self._lock:
                self._used_tokens.add(token)
        return result


def _send_task_success(backend_class: Any) -> Callable[..., Any]:
    """moto's send_task_success reads the environment of every running execution, and one started a
    moment ago has none yet: AttributeError, which the caller sees as a 500 that AWS never gives.
    Such an execution holds no task token, so try again once it has one."""
    real = backend_class.send_task_success

    def send_task_success(backend: Any, task_token: str, outcome: str) -> Any:
        for _ in range(100):
            try:
                return real(backend, task_token, outcome)
            except AttributeError:  # it returns as soon as it has notified: nothing was resumed yet
                time.sleep(0.01)
        return real(backend, task_token, outcome)

    return send_task_success


def _fail_on_missing_path(real: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A Choice rule on a path the input lacks fails the execution with States.Runtime in AWS
    (only IsPresent may test a missing path); moto's rule is merely false."""

    def eval_body(comparison: Any, env: Any) -> None:
        if comparison.comparison_function.operator_type != ComparisonOperatorType.IsPresent:
            comparison.variable.eval(env)
            if isinstance(env.stack.pop(), NoSuchVariable):
                path = comparison.variable.string_sampler.literal_value
                cause = f"Invalid path '{path}': The choice state's condition path references an invalid value."
                error = StatesErrorNameType.StatesRuntime
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=error),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(error=error.to_name(), cause=cause)
                        ),
                    )
                )
        real(comparison, env)

    return eval_body


class _ScaledSleep:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.scale)


def _fast_interpreter() -> list[Any]:
    """Patches (not started) that make moto fast enough for a thousand payments, semantics unchanged.

    Stock moto parses the whole ASL with ANTLR at the start of every execution (~40% of the CPU per
    payment), builds a boto3 client for every task, parses every JSONPath each time it reads one, and
    each TransactWriteItems deep-copies every table it touches (all orders, for every fulfilment).
    """
    lock = threading.Lock()
    programs: dict[str, Any] = {}
    clients: dict[tuple[str, str], Any] = {}

    # One parsed program per definition, shared by its executions. Safe: components keep what an
    # execution changes in its Environment (stack, heap, states, frames), never on themselves; moto
    # itself runs one Map iterator's or Parallel branch's states on several threads at once.
    def program(worker: ExecutionWorker) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    # The exception: EvalComponent.heap_key, a uid drawn on first use, keys a retrier's attempt count
    # and backoff in env.heap. Two executions first retrying at once could draw two, and one would lose
    # its count. id() is fixed for as long as the program is cached.
    heap_key = property(lambda component: f"{id(component)}")

    # moto's boto_client_for ignores state_credentials and builds the same client for (region, service)
    # every time; boto3 clients, unlike sessions and resources, are thread-safe.
    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:
            if (region, service) not in clients:
                clients[(region, service)] = boto_client.boto_client_for(region, service, state_credentials)
            return clients[(region, service)]

    # jsonpath_ng's find() reads the parsed expression and never changes it.
    parse_json_path = functools.lru_cache(maxsize=4096)(json_path.parse)

    return [
        mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", program),
        mock.patch.object(EvalComponent, "heap_key", heap_key),
        mock.patch.object(lambda_eval_utils, "boto_client_for", client_for),
        mock.patch.object(state_task_service_dynamodb, "boto_client_for", client_for),
        mock.patch.object(json_path, "parse", parse_json_path),
        *_item_level_transactions(),
    ]


def _item_level_transactions() -> list[Any]:
    """TransactWriteItems without a deep copy of each table it touches.

    moto backs up each table (copy.deepcopy), applies the operations one by one and, if any fails,
    puts the backups back. Here it copies nothing and this wrapper backs up the items the operations
    name (and the length of each table's stream) instead: the same state afterwards, as AwsTraffic
    applies one DynamoDB request at a time. moto.dynamodb.models deep-copies no other Table.
    """
    in_transaction = threading.local()
    real = DynamoDBBackend.transact_write_items

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if getattr(in_transaction, "on", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved, streams = [], []
        for entry in transact_items:
            operation = next(iter(entry.values()), None)
            table = backend.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            key = (operation.get("Key") or operation.get("Item") or {}) if table else {}
            if table is None or table.hash_key_attr not in key:
                continue  # moto backs up no such table either, or the operation fails before writing
            hash_value = DynamoType(key[table.hash_key_attr])  # a range-key table's partition, whole
            saved.append((table, hash_value, copy.deepcopy(table.items.get(hash_value))))
            if table.stream_shard is not None:
                streams.append((table.stream_shard, len(table.stream_shard.items)))
        in_transaction.on = True
        try:
            real(backend, transact_items)
        except BaseException:
            for table, hash_value, item in reversed(saved):
                if item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            for shard, length in streams:
                del shard.items[length:]
            raise
        finally:
            in_transaction.on = False

    return [
        mock.patch.object(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=deepcopy)),
        mock.patch.object(DynamoDBBackend, "transact_write_items", transact_write_items),
    ]


def _body(response: Any) -> str:
    body = getattr(response, "body", None) or ""
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


# What DynamoDB says when one item's partition refuses a write (API reference: ThrottlingReason; TransactWriteItems).
PARTITION_THROTTLED = "The request was denied due to request throttling."
TRANSACTION_THROTTLED = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table "
    "or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."
)


def _table_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:123456789012:table/{table}"


def _error(status: int, code: str, message: str, **fields: Any) -> tuple[int, dict[str, str], str]:
    body = json.dumps({"__type": code, "message": message, **fields})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    headers["x-amzn-RequestId"] = str(uuid.uuid4())  # as every AWS answer has; moto's interpreter reads it
    return status, headers, body


def http_api_event(method: str, raw_path: str, headers: Any, body: bytes) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, as the webhook function receives it."""
    path, _, query = raw_path.partition("?")
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {key.lower(): value for key, value in headers.items()},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },  # fmt: skip
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _route_pattern(path: str) -> "re.Pattern[str]":
    """An HTTP API route's path as a pattern: `/payments/{orderId}` matches one segment as orderId."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


def _load_handler(spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, function_name = spec.handler.rpartition(".")
    path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    module_spec = importlib.util.spec_from_file_location(f"functions.{spec.code_dir.name}.{module_name}", path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, function_name)
