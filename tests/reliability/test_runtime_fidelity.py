"""Where the local runtime failed in ways AWS does not, found by `make reliability`, and fixed there."""

import json

from moto.core.routing import get_service_router

from local_runtime.engine import LocalCloud, _error, _send_task_success
from local_runtime.reliability.faults import LAMBDA_STEPS, lambda_step_of
from local_runtime.template import ROOT


def test_send_task_success_waits_out_an_execution_that_has_just_started() -> None:
    # moto reads every running execution's environment; one started a moment ago has none yet
    calls: list[str] = []

    class Backend:
        def send_task_success(self, task_token: str, outcome: str) -> str:
            calls.append(task_token)
            if len(calls) == 1:
                raise AttributeError("'NoneType' object has no attribute 'callback_pool_manager'")
            return "resumed"

    assert _send_task_success(Backend)(Backend(), "token-1", "{}") == "resumed"
    assert calls == ["token-1", "token-1"]


def test_injected_aws_errors_carry_a_request_id() -> None:
    # moto's interpreter names a failed Lambda or DynamoDB task from the error's request id
    status, headers, body = _error(500, "ServiceException", "injected")

    assert (status, json.loads(body)["__type"]) == (500, "ServiceException")
    assert headers["x-amzn-RequestId"]


def test_lambda_requests_are_routed_before_any_execution_invokes_a_function() -> None:
    # moto builds a service's router on its first request, not thread-safely: 32 executions invoking their first
    # function at once once ended one in States.Runtime ('OperationModel' object has no attribute 'http_trait')
    get_service_router.cache_clear()

    with LocalCloud(stripe_api_base="http://127.0.0.1:9", stripe_api_key="sk_test_x", webhook_signing_secret="whsec_x"):
        assert get_service_router("lambda")._routers


def test_every_step_a_fault_can_aim_at_is_told_by_the_payload_its_task_state_sends() -> None:
    # A fault aimed at a step fires only on invocations whose payload has exactly that step's keys: an entry
    # that no longer matches the ASL's Payload would silently never fire, and its schedule would prove nothing.
    definition = json.loads((ROOT / "statemachine" / "payment_workflow.asl.json").read_text())
    for step, (keys, values) in LAMBDA_STEPS.items():
        payload = definition["States"][step]["Parameters"]["Payload"]
        assert {key.removesuffix(".$") for key in payload} == keys, step
        assert all(payload.get(key) == value for key, value in values.items()), step
        sent = {key.removesuffix(".$"): value for key, value in payload.items()}
        assert lambda_step_of(sent) == step
