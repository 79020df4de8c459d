"""The picture of every demo scenario's execution draws the path its history took."""

import boto3
import pytest

from local_runtime.pictures import START, picture_of
from local_runtime.scenarios import SCENARIOS, Scenario
from tests.conftest import drawn

pytestmark = pytest.mark.e2e


def _failed_states(history: list[dict]) -> set[str]:
    failed, state = set(), None
    for event in history:
        if event["type"].endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        elif event["type"].endswith(("Failed", "TimedOut")) and not event["type"].startswith("Execution"):
            failed.add(state)
    return failed


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_the_picture_draws_the_path_of_the_history(cloud, scenario_outcome, scenario: Scenario) -> None:
    outcome = scenario_outcome(scenario)
    history = cloud.history(outcome.execution_arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]

    nodes, edges = drawn(picture_of(boto3.client("stepfunctions"), outcome.execution_arn, scenario.name))

    assert {name for name, classes in nodes.items() if "entered" in classes} == {START, *entered}
    assert {(source, target) for source, target, classes in edges if "followed" in classes} == set(
        zip([START, *entered], entered, strict=False)
    )
    assert [name for name, classes in nodes.items() if "final" in classes] == [entered[-1]]
    assert {name for name, classes in nodes.items() if "failed" in classes} == _failed_states(history)
    caught = {source for source, _, classes in edges if {"followed", "caught"} <= classes}
    assert caught <= _failed_states(history)
