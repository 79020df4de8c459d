"""The ASL file itself: valid States Language, wired to the template, and shaped as the design says."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from statelint.linter import Linter

from local_runtime.template import Template

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "payment_workflow.asl.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
TRANSIENT = {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "StripeUnavailable", "AwsUnavailable"}
PARKED_STEPS = (
    "CreatePaymentIntent", "WaitForPaymentOutcome", "RetryOffSession", "SettleFailedAttempt", "ReconcileAfterTimeout",
    "FulfilOrder", "RefundPayment", "MarkOrderRejected", "MarkOrderFailed", "MarkOrderCanceled", "MarkOrderTimedOut",
    "ReserveStock", "CapturePayment", "ReleaseAuthorization", "MarkOrderOutOfStock", "MarkOrderAuthorizationExpired",
)  # fmt: skip


@pytest.fixture(scope="module")
def asl_text() -> str:
    return ASL_PATH.read_text()


@pytest.fixture(scope="module")
def states(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)["States"]


def _substitutions() -> dict[str, Any]:
    template = Template("test")
    return template.resources["PaymentWorkflow"]["Properties"]["DefinitionSubstitutions"]


def test_statelint_finds_no_problem_once_substituted() -> None:
    # cfn-lint does not read a DefinitionUri file; statelint does.
    definition = Template("test").state_machine("PaymentWorkflow")[1]

    assert Linter.validate(json.loads(definition)) == []


def test_every_placeholder_is_substituted_and_every_substitution_used(asl_text: str) -> None:
    placeholders = set(PLACEHOLDER.findall(asl_text))

    assert placeholders == set(_substitutions())


def test_every_state_is_reachable_and_every_target_exists(states: dict[str, Any]) -> None:
    def targets(state: dict[str, Any]) -> set[str]:
        found = {state.get("Next"), state.get("Default")}
        found |= {choice["Next"] for choice in state.get("Choices", [])}
        found |= {catch["Next"] for catch in state.get("Catch", [])}
        return {t for t in found if t}

    reached, frontier = set(), ["AcceptOrder"]
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            assert name in states, f"{name} is a target but not a state"
            frontier.extend(targets(states[name]))

    assert reached == set(states)


def test_every_task_retries_transient_errors_with_backoff_and_jitter(states: dict[str, Any]) -> None:
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        retriers = state.get("Retry", [])
        assert retriers, f"{name} has no Retry"
        first = retriers[0]
        assert first["BackoffRate"] > 1 and first["JitterStrategy"] == "FULL" and first["MaxDelaySeconds"] > 0, name
        if "lambda:invoke" in state["Resource"]:
            assert set(first["ErrorEquals"]) >= TRANSIENT, name
        assert "States.Timeout" not in {e for r in retriers for e in r["ErrorEquals"]}, f"{name} retries a timeout"


def test_the_callback_task_waits_on_its_token_with_a_timeout_and_a_catch(states: dict[str, Any]) -> None:
    callbacks = {n: s for n, s in states.items() if s.get("Resource", "").endswith(".waitForTaskToken")}

    assert list(callbacks) == ["WaitForPaymentOutcome"]
    wait = callbacks["WaitForPaymentOutcome"]
    assert wait["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert "TimeoutSeconds" in wait or "TimeoutSecondsPath" in wait
    caught = [c for c in wait["Catch"] if "States.Timeout" in c["ErrorEquals"]]
    assert caught and caught[0]["Next"] == "ReconcileAfterTimeout"


def test_final_states_name_the_outcome(states: dict[str, Any]) -> None:
    finals = {name for name, state in states.items() if state["Type"] in ("Succeed", "Fail")}

    assert finals == {
        "PaymentSucceeded", "OrderRejected", "DuplicateOrder", "PaymentRejected", "PaymentFailed", "PaymentCanceled",
        "PaymentTimedOut", "Refunded", "NeedsAttention", "OutOfStock", "AuthorizationExpired",
    }  # fmt: skip
    for name in finals - {"PaymentSucceeded"}:
        assert {"Error", "ErrorPath"} & set(states[name]), name
        assert {"Cause", "CausePath"} & set(states[name]), name


def test_every_function_the_workflow_invokes_is_in_the_template() -> None:
    functions = Template("test").functions()
    invoked = {
        value["Fn::GetAtt"][0]
        for value in _substitutions().values()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }

    assert invoked <= set(functions)
    for logical_id in invoked:
        assert (functions[logical_id].code_dir / "app.py").exists()


def test_no_task_can_end_the_execution_with_a_raw_error(states: dict[str, Any]) -> None:
    # Every Task catches States.ALL, so no Lambda.*, StripeUnavailable or DynamoDB.* error ends an execution
    # unnamed; and from every state some path leads to a named final state.
    for name, state in states.items():
        if state["Type"] == "Task":
            caught = [error for catch in state.get("Catch", []) for error in catch["ErrorEquals"]]
            assert "States.ALL" in caught, f"{name} lets an error end the execution unnamed"

    def successors(state: dict[str, Any]) -> set[str]:
        found = {state.get("Next"), state.get("Default")}
        found |= {choice["Next"] for choice in state.get("Choices", [])}
        found |= {catch["Next"] for catch in state.get("Catch", [])}
        return {t for t in found if t}

    finals = {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail")}
    ends: set[str] = set(finals)
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in ends and successors(state) & ends:
                ends.add(name)
                changed = True
    assert ends == set(states)


def test_transient_errors_never_lead_to_a_refund_cancel_or_failed_order(states: dict[str, Any]) -> None:
    # What a money-moving step cannot tell to be the order's answer parks and runs the same step again.
    for name in PARKED_STEPS:
        (catch_all,) = [c for c in states[name]["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        park = states[catch_all["Next"]]
        assert (catch_all["ResultPath"], park["Type"], park["Next"]) == ("$.park.failure", "Pass", "ParkOrGiveUp"), name
        assert park["Parameters"]["step"] == name
    resume = {choice["StringEquals"]: choice["Next"] for choice in states["ResumeParkedStep"]["Choices"]}
    assert resume == {name: name for name in PARKED_STEPS}
    assert states["ParkOrGiveUp"]["Choices"][0]["Next"] == "ExplainNeedsAttention"
    assert states["ParkOrGiveUp"]["Default"] == "ParkWhileUnavailable"
    fulfil_catches = {c["ErrorEquals"][0]: c["Next"] for c in states["FulfilOrder"]["Catch"]}
    assert fulfil_catches == {
        "PaymentNotConfirmed": "SettleFailedAttempt", "OutOfStock": "RefundPayment", "States.ALL": "ParkFulfilOrder",
    }  # fmt: skip


def test_a_failed_token_registration_is_retried_with_a_fresh_token_not_reconciled(states: dict[str, Any]) -> None:
    wait = states["WaitForPaymentOutcome"]
    retried = {error for retry in wait["Retry"] for error in retry["ErrorEquals"]}

    assert {"Lambda.Unknown", "Sandbox.Timedout", "Lambda.ServiceException"} <= retried
    catches = {c["ErrorEquals"][0]: c["Next"] for c in wait["Catch"]}
    assert catches == {"States.Timeout": "ReconcileAfterTimeout", "States.ALL": "ParkWaitForPaymentOutcome"}


def test_an_authorisation_is_captured_only_after_its_stock_is_reserved(states: dict[str, Any]) -> None:
    # What leads to CapturePayment: ReserveStock's success, nothing else (no Catch, no Choice, no other Next).
    into_capture = {
        name
        for name, state in states.items()
        if state.get("Next") == "CapturePayment"
        or state.get("Default") == "CapturePayment"
        or any(c["Next"] == "CapturePayment" for c in state.get("Choices", []) + state.get("Catch", []))
    }
    assert into_capture == {"ReserveStock", "ResumeParkedStep"} or into_capture == {"ReserveStock"}
    resume = states.get("ResumeParkedStep", {}).get("Choices", [])
    assert all(c.get("StringEquals") == "CapturePayment" for c in resume if c["Next"] == "CapturePayment")
    # Every authorised outcome goes to ReserveStock; out of stock releases the authorisation, never refunds.
    authorised = [
        choice["Next"]
        for state in states.values()
        for choice in state.get("Choices", [])
        if choice.get("StringEquals") == "requires_capture"
    ]
    assert authorised and set(authorised) == {"ReserveStock"}
    reserve_catches = {c["ErrorEquals"][0]: c["Next"] for c in states["ReserveStock"]["Catch"]}
    assert reserve_catches["OutOfStock"] == "ReleaseAuthorization"
    capture_catches = {c["ErrorEquals"][0]: c["Next"] for c in states["CapturePayment"]["Catch"]}
    assert capture_catches["AuthorizationExpired"] == "ReleaseAuthorization"
    assert states["CapturePayment"]["Next"] == "FulfilOrder"


def test_only_the_workflow_s_own_steps_write_what_fulfil_takes_as_proof_of_capture(states: dict[str, Any]) -> None:
    # FulfilOrder trusts $.authorization.captured instead of reading the PaymentIntent again: no outcome a task token
    # can send (a leaked token), and no start input, may reach it. AcceptOrder starts it empty; ReserveStock and
    # CapturePayment, our Lambdas' answers from Stripe, write it; NextAttempt carries it on, untouched.
    result_paths = {
        name: state.get("ResultPath", "$")
        for name, state in states.items()
        if state["Type"] in ("Task", "Map", "Parallel") and state.get("ResultPath", "$") is not None
    }
    writers = {name: path for name, path in result_paths.items() if path == "$" or path.startswith("$.authorization")}
    assert writers == {
        "AcceptOrder": "$", "ReserveStock": "$.authorization", "CapturePayment": "$.authorization.captured",
    }  # fmt: skip
    assert states["AcceptOrder"]["ResultSelector"]["authorization"] == {}
    assert states["CapturePayment"]["Parameters"]["FunctionName"] == "${SettleAuthorizationFunctionArn}"
    builders = {name for name, state in states.items() if state["Type"] == "Pass" and "Parameters" in state}
    for name in builders:
        written = {key.removesuffix(".$"): value for key, value in states[name]["Parameters"].items()}
        assert written.get("authorization", "$.authorization") == "$.authorization", name
    assert states["FulfilOrder"]["Parameters"]["Payload"]["authorization.$"] == "$.authorization"


def test_a_spent_stripe_budget_waits_its_turn_in_the_retry_rather_than_parking(states: dict[str, Any]) -> None:
    # StripeBusy (our budget spent, or Stripe's rate_limit) is a queue, not an outage: every step that calls Stripe
    # retries it longer than an outage (minutes, with full jitter) before its Catch parks it for ParkIntervalSeconds.
    calls_stripe = {
        "${ConfirmPaymentIntentFunctionArn}", "${CreatePaymentIntentFunctionArn}", "${FulfilOrderFunctionArn}",
        "${RefundPaymentFunctionArn}", "${ReserveStockFunctionArn}", "${SettleAuthorizationFunctionArn}",
        "${SettlePaymentIntentFunctionArn}",
    }  # fmt: skip
    steps = [name for name, s in states.items() if s.get("Parameters", {}).get("FunctionName") in calls_stripe]
    assert len(steps) >= 9
    for name in steps:
        outage, busy = (
            next(r for r in states[name]["Retry"] if error in r["ErrorEquals"])
            for error in ("StripeUnavailable", "StripeBusy")
        )
        assert busy is not outage and busy["JitterStrategy"] == "FULL", name
        patience = sum(min(busy["MaxDelaySeconds"], busy["IntervalSeconds"] * busy["BackoffRate"] ** k)
                       for k in range(busy["MaxAttempts"]))  # fmt: skip
        assert 120 <= patience <= 600, (name, patience)  # a few minutes: a burst drains, a real outage still parks
