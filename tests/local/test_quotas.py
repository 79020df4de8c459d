"""The local runtime's quotas (local_runtime/quotas.py), pinned to what AWS and Stripe answer beyond them.

Step Functions: StartExecution and SendTaskSuccess beyond their token buckets get 400 ThrottlingException
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; the API reference's common errors).
DynamoDB: writes to one item beyond its partition's rate get ProvisionedThroughputExceededException with the reason
TableWriteKeyRangeThroughputExceeded, or, in a transaction, TransactionCanceledException with a ThrottlingError
reason (API reference: ThrottlingReason, TransactWriteItems). Stripe: 429 `rate_limit` beyond the rate per account
and per endpoint (https://docs.stripe.com/rate-limits). Each bucket is measured on a clock the test moves, so that no
test depends on its speed; each quota is checked at its rate (never refused) and just beyond it (refused).
"""

import json
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
import stripe
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.responses import BaseResponse

from local_runtime.engine import FAKE_AWS_ENV, AwsTraffic, LocalCloud
from local_runtime.fake_stripe import Clock, FakeStripe
from local_runtime.quotas import Quotas, Throttle
from tests.local._support import client_of, create

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})  # see each refusal, not botocore's retry
SCALE = 0.01  # StartExecution 3/s (bucket 13), SendTaskSuccess 5/s (bucket 30), 10 write units/s per item


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def aws(now: Now) -> Iterator[AwsTraffic]:
    """moto behind AwsTraffic, as LocalCloud runs it, with the quotas at SCALE on the test's clock."""
    traffic = AwsTraffic()
    traffic.throttle = Throttle(Quotas.scaled(SCALE), {"stock": "sku"}, now=now)
    with (
        mock.patch.dict("os.environ", FAKE_AWS_ENV),
        mock_aws(),
        mock.patch.object(BaseResponse, "call_action", traffic.wrap(BaseResponse.call_action)),
    ):
        dynamodb = boto3.client("dynamodb", config=NO_RETRIES)
        for table in ("stock", "other"):
            dynamodb.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
            )  # fmt: skip
        yield traffic


def _code(call: Any) -> str:
    try:
        call()
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "OK"


def _state_machine() -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    return boto3.client("stepfunctions").create_state_machine(
        name="m", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]


def test_start_execution_beyond_its_bucket_is_throttled_as_step_functions_does(aws: AwsTraffic, now: Now) -> None:
    client, arn = boto3.client("stepfunctions", config=NO_RETRIES), _state_machine()
    start = iter(range(1000))

    def start_one() -> None:
        client.start_execution(stateMachineArn=arn, name=f"e{next(start)}", input="{}")

    assert [_code(start_one) for _ in range(13)] == ["OK"] * 13  # the bucket: 1,300 x 0.01

    with pytest.raises(ClientError) as refused:
        start_one()
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert aws.throttled[("stepfunctions", "StartExecution")] == 1

    for _ in range(30):  # at the refill rate (300 x 0.01 = 3 per second) none is refused
        now.t += 1 / 3
        start_one()


def test_send_task_success_beyond_its_bucket_is_throttled(aws: AwsTraffic, now: Now) -> None:
    client = boto3.client("stepfunctions", config=NO_RETRIES)

    def send() -> str:
        return _code(lambda: client.send_task_success(taskToken="unknown-token", output="{}"))

    assert "ThrottlingException" not in {send() for _ in range(30)}  # the bucket: 3,000 x 0.01; moto answers them
    assert send() == "ThrottlingException"
    for _ in range(20):  # at 5 per second
        now.t += 1 / 5
        assert send() != "ThrottlingException"


def _take(sku: str, table: str = "stock") -> str:
    return _code(lambda: boto3.client("dynamodb", config=NO_RETRIES).update_item(
        TableName=table, Key={"sku": {"S": sku}}, UpdateExpression="ADD available :n",
        ExpressionAttributeValues={":n": {"N": "-1"}},
    ))  # fmt: skip


def test_writes_to_one_item_beyond_its_partition_rate_are_throttled_as_dynamodb_does(
    aws: AwsTraffic, now: Now
) -> None:
    assert [_take("MUG") for _ in range(10)] == ["OK"] * 10  # 1,000 write units/s x 0.01, a second's worth

    with pytest.raises(ClientError) as refused:
        boto3.client("dynamodb", config=NO_RETRIES).update_item(
            TableName="stock", Key={"sku": {"S": "MUG"}}, UpdateExpression="ADD available :n",
            ExpressionAttributeValues={":n": {"N": "-1"}},
        )  # fmt: skip
    response = refused.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ProvisionedThroughputExceededException", 400
    )
    assert response["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
    assert _take("TEA") == "OK"  # another item, another partition
    item = boto3.client("dynamodb").get_item(TableName="stock", Key={"sku": {"S": "MUG"}})["Item"]
    assert item["available"] == {"N": "-10"}  # the throttled write changed nothing

    for _ in range(50):  # at 10 write units per second none is refused
        now.t += 0.1
        assert _take("MUG") == "OK"


def test_a_transaction_touching_a_hot_item_is_cancelled_with_a_throttling_reason(aws: AwsTraffic, now: Now) -> None:
    client = boto3.client("dynamodb", config=NO_RETRIES)

    def transact() -> None:
        client.transact_write_items(TransactItems=[
            {"Update": {"TableName": "other", "Key": {"sku": {"S": f"order-{now.t}"}},
                        "UpdateExpression": "SET done = :y", "ExpressionAttributeValues": {":y": {"BOOL": True}}}},
            {"Update": {"TableName": "stock", "Key": {"sku": {"S": "MUG"}}, "UpdateExpression": "ADD available :n",
                        "ExpressionAttributeValues": {":n": {"N": "-1"}}}},
        ])  # fmt: skip

    for _ in range(5):  # two write units each: five use up the item's second
        transact()
        now.t += 0.001
    with pytest.raises(ClientError) as refused:
        transact()
    response = refused.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in response["CancellationReasons"]] == ["None", "ThrottlingError"]
    assert client.scan(TableName="other")["Count"] == 5  # the cancelled transaction wrote nothing

    for _ in range(20):  # at 5 transactions (10 units) per second none is refused
        now.t += 0.2
        transact()


def test_quotas_are_off_unless_asked() -> None:
    traffic = AwsTraffic()
    assert traffic.throttle is None
    with (
        mock.patch.dict("os.environ", FAKE_AWS_ENV),
        mock_aws(),
        mock.patch.object(BaseResponse, "call_action", traffic.wrap(BaseResponse.call_action)),
    ):
        client, arn = boto3.client("stepfunctions", config=NO_RETRIES), _state_machine()
        for n in range(100):
            client.start_execution(stateMachineArn=arn, name=f"e{n}", input="{}")
    assert not traffic.throttled


def test_the_scale_applies_to_every_quota_alike() -> None:
    full, tenth = Quotas(), Quotas.scaled(0.1)

    assert tenth.model_limits() == pytest.approx({name: rate / 10 for name, rate in full.model_limits().items()})
    assert tenth.start_execution == pytest.approx((30, 130))
    assert tenth.stripe_limits() == pytest.approx(
        {"rate_limit_per_second": 10, "endpoint_rate_limit_per_second": 2.5}
    )


# -- the local Stripe at a scale -----------------------------------------------------------------


@pytest.fixture
def limited_stripe() -> Iterator[FakeStripe]:
    limits = Quotas.scaled(0.2).stripe_limits()  # 20 requests/s per account, 5 per endpoint
    with FakeStripe(clock=Clock(stopped_at=time.time()), **limits) as fake:
        yield fake


def test_stripe_refuses_requests_beyond_an_endpoints_rate(limited_stripe: FakeStripe) -> None:
    client = client_of(limited_stripe)
    pi = create(client, "pm_card_visa", key="order-1")  # POST /v1/payment_intents: one of its 5
    for _ in range(5):  # GET /v1/payment_intents/{id}: one endpoint whatever the id
        client.v1.payment_intents.retrieve(pi.id)

    with pytest.raises(stripe.RateLimitError) as refused:
        client.v1.payment_intents.retrieve(pi.id)
    assert (refused.value.http_status, refused.value.error.code) == (429, "rate_limit")
    client.v1.payment_intents.list()  # another endpoint has its own 5

    for _ in range(20):  # at 5 per second none is refused
        limited_stripe.clock.advance(1 / 5)
        client.v1.payment_intents.retrieve(pi.id)


def test_stripe_refuses_requests_beyond_the_accounts_rate_across_endpoints(limited_stripe: FakeStripe) -> None:
    client = client_of(limited_stripe)
    pis = [create(client, "pm_card_visa", key=f"order-{n}") for n in range(5)]
    for pi in pis[:4]:  # 5 creates, 4 x (retrieve, list, create a customer): 17 of 20, none of the endpoints' 5 over
        client.v1.payment_intents.retrieve(pi.id)
        client.v1.payment_intents.list()
        client.v1.customers.create()
    for _ in range(3):
        client.v1.events.list()

    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.retrieve(pis[4].id)  # its endpoint has a token left; the account has none


def test_local_cloud_throttles_only_when_given_quotas() -> None:
    """Off by default (the demo and the tests run unthrottled); on, keyed on each table's partition key."""
    settings = {"stripe_api_base": "http://127.0.0.1:9", "stripe_api_key": "sk", "webhook_signing_secret": "whsec"}
    with LocalCloud(**settings) as cloud:
        assert cloud.aws.throttle is None
    with LocalCloud(**settings, quotas=Quotas.scaled(0.1)) as cloud:
        assert cloud.aws.throttle is not None
        assert cloud.aws.throttle.hash_keys[cloud.template.physical["InventoryTable"]] == "sku"
        assert cloud.aws.throttle.quotas.start_execution == pytest.approx((30, 130))
