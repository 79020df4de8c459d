"""Which AWS errors are ours to retry."""

from botocore.exceptions import ClientError

TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
    "TransactionConflictException", "TooManyRequestsException",
})  # fmt: skip


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in TRANSIENT_CODES or status >= 500
