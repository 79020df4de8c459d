"""Unit-test fixtures: moto (`aws`) and the tables of template.yaml (`tables`, so key schemas cannot
drift), over one long-lived boto3 Session: moto resets boto3's default session on every mock, and a
fresh session reloads the service models (~0.2 s a test)."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_runtime.template import Template
from payments.records import with_python_values


@pytest.fixture(scope="session")
def boto_session() -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def aws(boto_session: boto3.Session) -> Iterator[None]:
    with mock_aws():
        boto3.DEFAULT_SESSION = boto_session  # moto restores its own patched value on exit
        yield


@pytest.fixture(scope="session")
def table_specs() -> dict[str, dict[str, Any]]:
    return {
        logical_id: table["Properties"]
        for logical_id, table in Template("test").of_type("AWS::DynamoDB::Table").items()
    }


@pytest.fixture
def tables(aws: None, boto_session: boto3.Session, table_specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    client = boto_session.client("dynamodb")
    resource = boto_session.resource("dynamodb")
    made = {}
    for logical_id, props in table_specs.items():
        client.create_table(
            TableName=logical_id,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
        )
        made[logical_id] = resource.Table(logical_id)
    return made


@pytest.fixture
def dynamodb(tables: dict[str, Any], boto_session: boto3.Session) -> Any:
    """The client the records use, over the template's tables (as `payments.adapters` builds it)."""
    return with_python_values(boto_session.client("dynamodb"))
