"""Shared fixtures: fake AWS credentials, moto tables built from template.yaml, handler loading."""

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_runtime.template import Template

ROOT = Path(__file__).resolve().parent.parent

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_SERVICE_NAME="stripe-payments-test",
)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def tables(aws: None) -> dict[str, Any]:
    """The template's DynamoDB tables in moto, keyed by logical id (key schemas cannot drift)."""
    template = Template("test")
    client = boto3.client("dynamodb")
    resource = boto3.resource("dynamodb")
    made = {}
    for logical_id, table in template.of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        client.create_table(
            TableName=logical_id,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
        )
        made[logical_id] = resource.Table(logical_id)
    return made


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions.{name}.app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_order(**overrides: Any) -> dict[str, Any]:
    order = {
        "orderId": "order-1001",
        "amount": 2500,
        "currency": "usd",
        "customer": {"id": "cus_Q1w2E3r4", "email": "ada@example.com"},
        "paymentMethod": "pm_card_visa",
        "items": [
            {"sku": "MUG-BLUE", "quantity": 2, "unitAmount": 1000},
            {"sku": "TEA-EARL", "quantity": 1, "unitAmount": 500},
        ],
    }
    order.update(overrides)
    return order
