"""The payment workflow's executions, as the order records and the reconciler see them."""

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.aws_errors import error_code, is_transient
from payments.errors import AwsUnavailable, OrderAlreadyStarted


@dataclass(frozen=True)
class ExecutionRef:
    """One run of the workflow. A name can be reused once Step Functions forgets an execution (90 days),
    so the ARN alone does not tell two runs apart; the ARN and the start time do, also across a redrive."""

    arn: str
    started_at: str


@dataclass(frozen=True)
class ExecutionStatus:
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE | GONE
    error: str | None = None
    cause: str | None = None


class Executions:
    def __init__(self, stepfunctions_client: Any, state_machine_arn: str = "") -> None:
        self._client = stepfunctions_client
        self._state_machine_arn = state_machine_arn

    def start(self, name: str, execution_input: dict[str, Any]) -> str:
        """Start the payment workflow; returns the execution's ARN. Raises OrderAlreadyStarted."""
        try:
            started = self._client.start_execution(
                stateMachineArn=self._state_machine_arn, name=name, input=json.dumps(execution_input)
            )
        except ClientError as error:
            if error_code(error) == "ExecutionAlreadyExists":
                raise OrderAlreadyStarted(
                    f"order {name} was started before, with another input or has ended"
                ) from error
            if is_transient(error) or error_code(error) == "ExecutionLimitExceeded":
                raise AwsUnavailable(f"StartExecution: {error}") from error
            raise
        except BotoCoreError as error:
            raise AwsUnavailable(f"StartExecution: {error}") from error
        return str(started["executionArn"])

    def status(self, execution_arn: str) -> ExecutionStatus:
        """GONE when Step Functions no longer knows the execution (its history is kept 90 days)."""
        try:
            described = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            if error_code(error) == "ExecutionDoesNotExist":
                return ExecutionStatus("GONE")
            if is_transient(error):
                raise AwsUnavailable(f"DescribeExecution: {error}") from error
            raise
        except BotoCoreError as error:
            raise AwsUnavailable(f"DescribeExecution: {error}") from error
        return ExecutionStatus(described["status"], described.get("error"), described.get("cause"))
