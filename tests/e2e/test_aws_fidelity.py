"""The local runtime behaves as AWS where moto does not: checked on tiny state machines of their own."""

import json
import uuid

import boto3
import pytest

pytestmark = pytest.mark.e2e


def _run(cloud, definition: dict, execution_input: dict) -> tuple[dict, list[dict]]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"engine-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/engine-test",
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    return cloud.wait_for(execution_arn, timeout=10), cloud.history(execution_arn)


def _route(rule: dict) -> dict:
    return {
        "StartAt": "Route",
        "States": {
            "Route": {"Type": "Choice", "Choices": [{**rule, "Next": "Matched"}], "Default": "NotMatched"},
            "Matched": {"Type": "Succeed"},
            "NotMatched": {"Type": "Succeed"},
        },
    }


def _entered(history: list[dict]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def test_a_choice_rule_on_a_missing_path_fails_the_execution_as_in_aws(cloud) -> None:
    execution, history = _run(cloud, _route({"Variable": "$.outcome.status", "StringEquals": "canceled"}), {})

    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"
    assert "$.outcome.status" in execution["cause"]
    assert "NotMatched" not in _entered(history)


def test_is_present_may_test_a_missing_path(cloud) -> None:
    rule = {
        "And": [
            {"Variable": "$.outcome.status", "IsPresent": True},
            {"Variable": "$.outcome.status", "StringEquals": "canceled"},
        ]
    }

    absent, absent_history = _run(cloud, _route(rule), {})
    present, present_history = _run(cloud, _route(rule), {"outcome": {"status": "canceled"}})

    assert (absent["status"], _entered(absent_history)[-1]) == ("SUCCEEDED", "NotMatched")
    assert (present["status"], _entered(present_history)[-1]) == ("SUCCEEDED", "Matched")
