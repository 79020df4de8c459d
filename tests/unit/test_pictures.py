"""Pictures of executions: the graph read from any ASL, the path read from a history, both drawn as DOT."""

import json
import shutil
from pathlib import Path

import pytest

from local_runtime.pictures import START, ExecutionPath, draw, path_of, save, transitions
from tests.conftest import drawn

ROOT = Path(__file__).resolve().parents[2]
MACHINE = {
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Retry": [{"ErrorEquals": ["StripeUnavailable"], "MaxAttempts": 2}],
            "Catch": [
                {"ErrorEquals": ["States.Timeout"], "Next": "Gone"},
                {"ErrorEquals": ["States.ALL"], "Next": "Gone"},
            ],
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.outcome.status", "IsPresent": True},
                        {"Variable": "$.outcome.status", "StringEquals": "paid"},
                    ],
                    "Next": "Done",
                },
                {"Variable": "$.attempt", "NumericLessThanPath": "$.maxAttempts", "Next": "Charge"},
            ],
            "Default": "Gone",
        },
        "Done": {"Type": "Succeed"},
        "Gone": {"Type": "Fail", "Error": "Gone"},
    },
}


def _event(kind: str, **details: object) -> dict:
    detail_key = (
        "stateEnteredEventDetails" if kind.endswith("StateEntered") else f"{kind[0].lower()}{kind[1:]}EventDetails"
    )
    return {"type": kind, detail_key: details} if details else {"type": kind}


# Charge fails once and its Retry succeeds; the Choice loops back; Charge times out, caught into Gone.
HISTORY = [
    _event("ExecutionStarted"),
    _event("TaskStateEntered", name="Charge"),
    _event("TaskFailed", error="StripeUnavailable"),
    _event("TaskSucceeded"),
    _event("ChoiceStateEntered", name="Route"),
    _event("TaskStateEntered", name="Charge"),
    _event("TaskTimedOut", error="States.Timeout"),
    _event("FailStateEntered", name="Gone"),
    _event("ExecutionFailed", error="Gone", cause="no outcome"),
]


def test_every_transition_the_asl_allows_is_drawn_with_its_rule() -> None:
    assert transitions(MACHINE) == {
        (START, "Charge", False): "",
        ("Charge", "Route", False): "",
        ("Charge", "Gone", True): "Timeout\nany error",
        ("Route", "Done", False): "outcome.status = paid",
        ("Route", "Charge", False): "attempt < maxAttempts",
        ("Route", "Gone", False): "otherwise",
    }


def test_the_history_gives_the_states_entered_and_the_one_that_failed() -> None:
    path = path_of(HISTORY)

    assert path.entered == ["Charge", "Route", "Charge", "Gone"]
    assert path.failed == {"Charge": "States.Timeout"}  # the retried failure is not one
    assert (path.status, path.final_state, path.ending) == ("FAILED", "Gone", "Gone: no outcome")
    assert path.followed == {(START, "Charge", False): 1, ("Charge", "Route", False): 1,
                             ("Route", "Charge", False): 1, ("Charge", "Gone", True): 1}  # fmt: skip


def test_the_picture_marks_the_path_the_failed_state_and_the_final_state() -> None:
    dot = draw(MACHINE, path_of(HISTORY), "an order")

    nodes, edges = drawn(dot)
    assert nodes == {
        START: {"state", "entered"},
        "Charge": {"state", "entered", "failed"},
        "Route": {"state", "entered"},
        "Done": {"state"},
        "Gone": {"state", "entered", "final"},
    }
    assert {(source, target) for source, target, classes in edges if "followed" in classes} == {
        (START, "Charge"), ("Charge", "Route"), ("Route", "Charge"), ("Charge", "Gone"),
    }  # fmt: skip
    assert ("Charge", "Gone", {"transition", "caught", "followed"}) in edges
    assert "Charge ×2\\n✗ States.Timeout" in dot


def test_every_state_of_the_payment_workflow_is_drawn() -> None:
    definition = json.loads((ROOT / "statemachine" / "payment_workflow.asl.json").read_text())

    nodes, edges = drawn(draw(definition, ExecutionPath(), "not started"))

    assert set(nodes) == {START, *definition["States"]}
    assert {state for source, target, _ in edges for state in (source, target)} <= set(nodes)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make setup installs it)")
def test_graphviz_draws_the_picture_as_svg_keeping_the_classes(tmp_path: Path) -> None:
    picture = save(draw(MACHINE, path_of(HISTORY), 'a "quoted" order'), tmp_path, "order")

    assert picture == tmp_path / "order.svg"
    assert 'class="node state entered failed"' in picture.read_text()
    assert (tmp_path / "order.dot").exists()
