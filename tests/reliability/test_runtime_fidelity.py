"""Where the local runtime failed in ways AWS does not, found by `make reliability`, and fixed there."""

import json

from local_runtime.engine import _error, _send_task_success


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
