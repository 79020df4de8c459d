"""The local stack (local_runtime.LocalCloud + FakeStripe) with a per-thread record of AWS requests.

LocalCloud counts every AWS request by (service, action). The benchmark also needs to know who
made each one, so that the harness's own requests (start-execution, describe-execution, reads
of the result) are left out, and so that one webhook invocation can be isolated while the state
machine carries on in its own threads. `CallRecorder` wraps the same moto entry point LocalCloud
wraps and notes the thread and, for DynamoDB, the tables each request touches and the items (partition
keys) each write touches, so that the capacity model can find the hottest key.
"""

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from moto.core.responses import BaseResponse

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.quotas import Quotas
from local_runtime.scenarios import LOCAL_PARAMETERS, seed_stack

API_KEY = "sk_test_local_bench"
SIGNING_SECRET = "whsec_local_bench"


@dataclass(frozen=True)
class AwsCall:
    service: str  # boto3 service name
    action: str
    thread: int
    tables: tuple[str, ...] = ()  # DynamoDB: the tables the request reads or writes
    written: tuple[tuple[str, str], ...] = ()  # DynamoDB: (table, partition key value) of each item it writes


class CallRecorder:
    def __init__(self, partition_keys: dict[str, str] | None = None) -> None:
        self.calls: list[AwsCall] = []
        self._partition_keys = partition_keys or {}  # table -> its partition key attribute
        self._lock = threading.Lock()

    def _wrap(self, call_action: Any) -> Any:
        recorder = self

        def call(response: Any) -> Any:
            service, action = response.boto3_service_name, response._get_action()
            tables = _tables(response, action) if service == "dynamodb" else ()
            written = _written(response, action, recorder._partition_keys) if service == "dynamodb" else ()
            with recorder._lock:
                recorder.calls.append(AwsCall(service, action, threading.get_ident(), tables, written))
            return call_action(response)

        return call

    @contextlib.contextmanager
    def installed(self) -> Iterator["CallRecorder"]:
        with mock.patch.object(BaseResponse, "call_action", self._wrap(BaseResponse.call_action)):
            yield self


def _tables(response: Any, action: str) -> tuple[str, ...]:
    if action == "TransactWriteItems":
        return tuple(next(iter(op.values()))["TableName"] for op in response._get_param("TransactItems") or [])
    name = response._get_param("TableName")
    return (name,) if name else ()


def _written(response: Any, action: str, partition_keys: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(table, partition key value) of each item a write request writes (a ConditionCheck writes nothing)."""
    if action == "TransactWriteItems":
        operations = [next(iter(op.items())) for op in response._get_param("TransactItems") or []]
    elif action in ("PutItem", "UpdateItem", "DeleteItem"):
        operations = [
            (action.removesuffix("Item"), {name: response._get_param(name) for name in ("TableName", "Key", "Item")})
        ]
    else:
        return ()
    written = []
    for kind, operation in operations:
        table = operation.get("TableName") or ""
        item = operation.get("Item") if kind == "Put" else operation.get("Key")
        attribute = partition_keys.get(table)
        if kind != "ConditionCheck" and item and attribute in item:
            ((_, value),) = item[attribute].items()
            written.append((table, str(value)))
    return tuple(written)


@dataclass
class Stack:
    cloud: LocalCloud
    stripe: FakeStripe
    recorder: CallRecorder
    logs: io.StringIO  # the functions' log lines, as CloudWatch Logs would receive them


@contextlib.contextmanager
def local_stack(quotas: Quotas | None = None, **parameters: str) -> Iterator[Stack]:
    """template.yaml on moto with the local Stripe, as `make demo` runs it; function output kept quiet.
    With `quotas`, both enforce them (local_runtime/quotas.py)."""
    logs = io.StringIO()
    limits = quotas.stripe_limits() if quotas else {}
    with (
        contextlib.redirect_stdout(io.StringIO()),
        FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, async_settle_seconds=0.5, **limits) as stripe,
        LocalCloud(
            stripe_api_base=stripe.url,
            stripe_api_key=API_KEY,
            webhook_signing_secret=SIGNING_SECRET,
            parameters={**LOCAL_PARAMETERS, **parameters},
            log_stream=logs,
            quotas=quotas,
        ) as cloud,
        CallRecorder(cloud.partition_keys()).installed() as recorder,
    ):
        stripe.add_webhook_endpoint(cloud.url_of("/webhooks/stripe"))
        seed_stack(cloud, stripe)
        yield Stack(cloud, stripe, recorder, logs)
