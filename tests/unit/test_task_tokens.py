"""task_tokens.TaskTokens: which SendTaskSuccess failures are spent tokens, transient, or bugs."""

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from payments.errors import AwsUnavailable
from payments.task_tokens import TaskTokens
from tests.unit._support import FakeStepFunctions, client_error


class _Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_task_success(self, **_: Any) -> None:
        raise self.error


def test_resume_sends_the_output_as_json() -> None:
    sfn = FakeStepFunctions()

    assert TaskTokens(sfn).resume("token-a", {"status": "succeeded", "retryable": False}) is True

    assert sfn.resumed == [("token-a", {"status": "succeeded", "retryable": False})]


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"])
def test_spent_token_codes_return_false(code: str) -> None:
    assert TaskTokens(_Raising(client_error(code))).resume("token-b", {}) is False


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(client_error("ThrottlingException"), id="throttling"),
        pytest.param(client_error("TooManyRequestsException"), id="too-many-requests"),
        pytest.param(client_error("ServiceUnavailable", http_status=503), id="service-unavailable"),
        pytest.param(client_error("SomethingNew", http_status=500), id="any-5xx"),
        pytest.param(EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"), id="no-network"),
    ],
)
def test_transient_failures_raise_aws_unavailable(error: Exception) -> None:
    with pytest.raises(AwsUnavailable, match="SendTaskSuccess"):
        TaskTokens(_Raising(error)).resume("token-c", {})


@pytest.mark.parametrize("code", ["InvalidOutput", "AccessDeniedException", "ValidationException"])
def test_other_client_errors_are_re_raised(code: str) -> None:
    with pytest.raises(ClientError) as caught:
        TaskTokens(_Raising(client_error(code))).resume("token-d", {})

    assert caught.value.response["Error"]["Code"] == code
    assert not isinstance(caught.value, AwsUnavailable)
