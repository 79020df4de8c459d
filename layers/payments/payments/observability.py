"""One Logger, Tracer and Metrics for every function (service name from POWERTOOLS_SERVICE_NAME)."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def now() -> datetime:
    return datetime.now(UTC)
