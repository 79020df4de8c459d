"""Reconciler: repair paid orders that are neither fulfilled nor refunded (authorised ones neither captured nor
released), and refund stray payments (release stray authorisations).

Started four ways: by EventBridge Scheduler (`{"sweep": {}}`, every 15 minutes), by EventBridge when an
execution ends FAILED, TIMED_OUT or ABORTED, by the webhook for a payment that succeeded after its
execution stopped waiting (`{"paymentIntentId": "pi_..."}`), and by an operator (either of those, or
`{"orderId": "..."}`).
"""

import json
from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import steps
from payments.adapters import executions, mailer, order_records, stripe_gateway
from payments.config import settings
from payments.observability import logger, metrics, now, tracer
from payments.reconciliation import Finding, Reconciler, needs_attention

EXECUTION_ENDED = "Step Functions Execution Status Change"
EXPECTED = (
    'an EventBridge Scheduler run {"sweep": {}}, a Step Functions Execution Status Change event, '
    '{"paymentIntentId": "pi_..."} or {"orderId": "..."}'
)


def _notify(kind: str, order: Any, details: dict[str, Any]) -> None:
    steps.notify_customer(kind, order, details, mailer=mailer())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config, started = settings(), now()
    reconciler = Reconciler(
        stripe=stripe_gateway(), orders=order_records(), executions=executions(), notify=_notify,
        grace_seconds=config.reconcile_grace_seconds,
    )  # fmt: skip
    found: Counter[Finding] = Counter()
    if not isinstance(event, dict):
        raise ValueError(f"expected {EXPECTED}, got {type(event).__name__}")
    if event.get("detail-type") == EXECUTION_ENDED:
        detail = event.get("detail") or {}
        ended = executions().status(detail["executionArn"])
        if needs_attention(ended.status, ended.error):
            logger.error("Execution needs attention", extra={"execution": detail["executionArn"], "error": ended.error})
            metrics.add_metric(name="ExecutionsNeedingAttention", unit=MetricUnit.Count, value=1)
        order_id = _order_id(detail.get("input"))
        if order_id:
            found = reconciler.order(order_id, started)
    elif "sweep" in event:
        found = reconciler.sweep(int(started.timestamp()) - config.reconcile_lookback_seconds, started)
    elif isinstance(event.get("paymentIntentId"), str):
        finding = reconciler.payment_intent(event["paymentIntentId"], started)
        found = Counter([finding] if finding else [])
    elif isinstance(event.get("orderId"), str):
        found = reconciler.order(event["orderId"], started)
    else:
        raise ValueError(f"expected {EXPECTED}, got keys {sorted(event)}")

    orphaned = found[Finding.FULFILLED] + found[Finding.REFUNDED] + found[Finding.RELEASED]
    stray = found[Finding.STRAY_REFUNDED] + found[Finding.STRAY_RELEASED]
    metrics.add_metric(name="OrphanedPaidOrders", unit=MetricUnit.Count, value=orphaned)
    metrics.add_metric(name="StrayPaymentsRefunded", unit=MetricUnit.Count, value=found[Finding.STRAY_REFUNDED])
    metrics.add_metric(name="StrayAuthorizationsReleased", unit=MetricUnit.Count, value=found[Finding.STRAY_RELEASED])
    result = {finding.value: found[finding] for finding in Finding}
    (logger.error if orphaned or stray else logger.info)("Reconciled", extra=result)
    return result


def _order_id(start_input: Any) -> str | None:
    try:
        order_id = json.loads(start_input).get("orderId")
    except (TypeError, ValueError, AttributeError):
        return None
    return order_id if isinstance(order_id, str) else None
