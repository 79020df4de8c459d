"""The adapter that resumes a waiting execution through its task token."""

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.aws_errors import error_code, is_transient
from payments.errors import AwsUnavailable

# The token was used already, the task timed out, or the execution ended: nothing to resume.
SPENT_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})


class TaskTokens:
    def __init__(self, stepfunctions_client: Any) -> None:
        self._client = stepfunctions_client

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """Send the outcome to the waiting task. False when the token is already spent."""
        try:
            self._client.send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as error:
            if error_code(error) in SPENT_TOKEN_CODES:
                return False
            if is_transient(error):
                raise AwsUnavailable(f"SendTaskSuccess: {error}") from error
            raise
        except BotoCoreError as error:
            raise AwsUnavailable(f"SendTaskSuccess: {error}") from error
        return True
