"""One Logger, Tracer and Metrics for every function (service name from POWERTOOLS_SERVICE_NAME).

The Tracer is built on first use: Tracer() imports the X-Ray SDK even where tracing is off, and
outside Lambda the SDK builds two X-Ray clients as it loads (~0.15 s of a cold start). The webhook,
whose cold start Stripe waits on, uses `trace_handler`, which builds it only where Powertools traces.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()


@cache
def _tracer() -> Tracer:
    return Tracer()


def __getattr__(name: str) -> Any:
    """`from payments.observability import tracer` builds the Tracer (PEP 562 module attribute)."""
    if name == "tracer":
        return _tracer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def trace_handler[**P, R](handler: Callable[P, R]) -> Callable[P, R]:
    """tracer.capture_lambda_handler where Powertools traces (in Lambda, unless POWERTOOLS_TRACE_DISABLED);
    elsewhere the handler itself, and the X-Ray SDK is never loaded."""
    if Tracer._is_tracer_disabled():  # Powertools' own rule, so the two cannot disagree
        return handler
    return _tracer().capture_lambda_handler(capture_response=False)(handler)


def now() -> datetime:
    return datetime.now(UTC)
