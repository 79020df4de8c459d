"""LocalCloud's speed-ups to moto: scoped to the open cloud, and moto's semantics kept."""

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from local_runtime.engine import FINAL_STATUSES, LocalCloud, _item_level_transactions

pytestmark = pytest.mark.e2e


def _key(value: str) -> dict[str, Any]:
    return {"id": {"S": value}}


# Each, applied in order to tables seeded with items a..d (and partition p, sorts 1..2).
TRANSACTIONS: list[list[dict[str, Any]]] = [
    [  # cancelled by its last condition, after the others have been applied
        {"Update": {"TableName": "plain", "Key": _key("a"), "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": "plain", "Item": {**_key("new"), "n": {"N": "9"}}}},
        {"Delete": {"TableName": "plain", "Key": _key("c")}},
        {"Update": {"TableName": "ranged", "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}},
                    "UpdateExpression": "SET tags = list_append(tags, :t)",
                    "ExpressionAttributeValues": {":t": {"L": [{"S": "x"}]}}}},
        {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "q"}, "sk": {"N": "1"}}}},
        {"ConditionCheck": {"TableName": "plain", "Key": _key("b"), "ConditionExpression": "n > :big",
                            "ExpressionAttributeValues": {":big": {"N": "100"}}}},
    ],
    [  # cancelled: the same item twice
        {"Update": {"TableName": "plain", "Key": _key("a"), "UpdateExpression": "SET n = :zero",
                    "ExpressionAttributeValues": {":zero": {"N": "0"}}}},
        {"Delete": {"TableName": "plain", "Key": _key("a")}},
    ],
    [  # refused: a table that does not exist
        {"Delete": {"TableName": "plain", "Key": _key("d")}},
        {"Put": {"TableName": "missing", "Item": _key("z")}},
    ],
    [  # applied
        {"Update": {"TableName": "plain", "Key": _key("b"), "UpdateExpression": "SET n = n - :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": "ranged", "Item": {"pk": {"S": "p"}, "sk": {"N": "3"}}}},
    ],
]  # fmt: skip


def _run_transactions() -> tuple[list[str], dict[str, Any], list[str]]:
    """Errors, every item afterwards, and the stream's event names, for TRANSACTIONS on fresh tables."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="plain", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )  # fmt: skip
    client.create_table(
        TableName="ranged",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}
        ],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    for n, name in enumerate("abcd"):
        client.put_item(TableName="plain", Item={**_key(name), "n": {"N": str(n)}})
    for sort in ("1", "2"):
        client.put_item(TableName="ranged", Item={"pk": {"S": "p"}, "sk": {"N": sort}, "tags": {"L": []}})
    errors = []
    for items in TRANSACTIONS:
        try:
            client.transact_write_items(TransactItems=items)
            errors.append("")
        except ClientError as error:
            errors.append(f"{error.response['Error']['Code']}: {error.response['Error']['Message']}")
    tables = {name: sorted(client.scan(TableName=name)["Items"], key=json.dumps) for name in ("plain", "ranged")}
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName="plain")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return errors, tables, [f"{r['eventName']} {json.dumps(r['dynamodb']['Keys'])}" for r in records]


def test_a_cancelled_transaction_leaves_the_tables_as_moto_leaves_them() -> None:
    with mock_aws():
        stock = _run_transactions()
    with mock_aws(), ExitStack() as patches:
        for patch in _item_level_transactions():
            patches.enter_context(patch)
        item_level = _run_transactions()

    assert item_level == stock
    errors, tables, _ = stock
    assert [e.split(":")[0] for e in errors] == ["TransactionCanceledException", "ValidationException",
                                                  "ResourceNotFoundException", ""]  # fmt: skip
    assert {"id": {"S": "new"}, "n": {"N": "9"}} not in tables["plain"]
    assert {"id": {"S": "a"}, "n": {"N": "0"}} in tables["plain"]


# -- the interpreter ------------------------------------------------------------------------------

RETRYING = {
    "StartAt": "Read",
    "States": {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "no-such-table", "Key": {"id": {"S.$": "$.id"}}},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1}],
            "End": True,
        }
    },
}


@contextmanager
def _cloud() -> Iterator[LocalCloud]:
    with LocalCloud(
        stripe_api_base="http://127.0.0.1:9", stripe_api_key="sk_test_engine", webhook_signing_secret="whsec_engine"
    ) as cloud:
        yield cloud


def _patched() -> dict[str, Any]:
    return {
        "entrypoint": ExecutionWorker._get_evaluation_entrypoint,
        "heap_key": EvalComponent.__dict__["heap_key"],
        "json_path": json_path.parse,
        "transactions": DynamoDBBackend.transact_write_items,
    }


def test_the_speed_ups_last_as_long_as_the_cloud() -> None:
    stock = _patched()

    with _cloud():
        tuned = _patched()
    with _cloud():
        tuned_again = _patched()

    assert _patched() == stock
    assert all(tuned[name] is not stock[name] for name in stock)
    assert tuned_again["entrypoint"] is not tuned["entrypoint"]  # each cloud its own cache


def test_executions_share_one_parsed_program_and_count_their_own_retries() -> None:
    parse = AmazonStateLanguageParser.parse
    with _cloud(), mock.patch.object(AmazonStateLanguageParser, "parse", side_effect=parse) as parsed:
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="retrying", definition=json.dumps(RETRYING), roleArn="arn:aws:iam::123456789012:role/r"
        )["stateMachineArn"]
        parsed.reset_mock()  # creating the state machine validates the definition: one parse of its own

        def run(n: int) -> list[str]:
            arn = sfn.start_execution(stateMachineArn=machine, name=f"run-{n}", input=json.dumps({"id": str(n)}))[
                "executionArn"
            ]
            while sfn.describe_execution(executionArn=arn)["status"] not in FINAL_STATUSES:
                time.sleep(0.05)
            return [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]

        with ThreadPoolExecutor(4) as pool:
            histories = list(pool.map(run, range(4)))

    assert parsed.call_count == 1
    for history in histories:
        assert history.count("TaskFailed") == 3  # the first attempt and both retries, each execution its own
        assert history[-1] == "ExecutionFailed"


def test_an_sqs_mapping_invokes_at_most_its_maximum_concurrency_batches_of_at_most_its_batch_size() -> None:
    # template.yaml: AdmissionSource, BatchSize 10, ScalingConfig.MaximumConcurrency AdmissionDrainConcurrency (2)
    running, peak, batches = 0, 0, []
    lock = threading.Lock()

    def slow_batches(logical_id: str, event: Any) -> None:
        nonlocal running, peak
        if logical_id != "StartQueuedPaymentsFunction":
            return
        with lock:
            running += 1
            peak = max(peak, running)
            batches.append(len(event["Records"]))
        time.sleep(0.2)
        with lock:
            running -= 1

    with _cloud() as cloud:
        cloud.before_invoke = slow_batches
        sqs = boto3.client("sqs")
        for n in range(25):  # messages that can never start: each reported failed, back after the visibility timeout
            sqs.send_message(QueueUrl=cloud.template.physical["AdmissionQueue"], MessageBody=json.dumps({"n": n}))
        deadline = time.monotonic() + 10
        while sum(batches) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert sum(batches) == 25 and max(batches) <= 10
    assert peak == 2


def test_overridden_parameters_reach_the_functions_next_cold_start_and_are_restored() -> None:
    from payments.config import settings

    with _cloud() as cloud:
        assert settings().stripe_requests_per_second == 20  # the template's default
        with cloud.parameters_overridden(StripeRequestsPerSecond="7"):
            assert settings().stripe_requests_per_second == 7
        assert settings().stripe_requests_per_second == 20


def test_the_functions_metrics_have_the_template_s_namespace_whenever_their_module_was_imported() -> None:
    # A unit test may import payments.observability before any stack set the functions' environment; Powertools
    # then has no namespace and fails the flush it makes at 100 values (the reconciler's, in a long run)
    from payments.observability import metrics

    metrics.namespace = None
    with _cloud():
        assert metrics.namespace == "StripePayments"
