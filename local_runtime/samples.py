"""Every sample event under events/: what it is for and the answer `make invoke` gives it on a fresh clone.

Before a sample runs, the local stack holds what it refers to, as the steps before it would have left
them: the order it names accepted (the start input in events/start/ with that order id) and the
PaymentIntent it names created for that order, under the sample's id. So each sample gets the answer it
would get in a stack where those exist. tests/samples/ invokes every sample and checks its answer here; a
file under events/ without one fails it.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.template import ROOT

EVENTS = ROOT / "events"
NOT_SAMPLES = {EVENTS / "local-env.json"}  # `sam local invoke --env-vars`, not an event
STATE_MACHINE = "PaymentWorkflow"
# Under CaptureMethod manual these run once the authorisation is captured (ReserveStock, CapturePayment).
PAID_BY_NOW = {"FulfilOrderFunction", "RefundPaymentFunction"}


@dataclass(frozen=True)
class Sample:
    target: str  # logical id in template.yaml: a function, or the state machine (the event is its input)
    answer: dict[str, Any]  # what `make invoke` prints has these keys with these values


def _webhook(result: str) -> Sample:
    return Sample(
        "StripeWebhookFunction", {"statusCode": 200, "body": json.dumps({"received": True, "result": result})}
    )


def _execution(status: str, final_state: str) -> Sample:
    return Sample(STATE_MACHINE, {"status": status, "finalState": final_state})


# No webhook sample resumes an execution: none waits for its PaymentIntent here, so the outcome is recorded
# for the token writer. The 3-D Secure start input times out: nobody answers the challenge (`make demo` does).
SAMPLES = {
    "functions/AcceptOrderFunction.json": Sample("AcceptOrderFunction", {"orderId": "order-succeeded-1"}),
    "functions/AcceptOrderFunction.invalid_amount.json": Sample(
        "AcceptOrderFunction", {"errorType": "InvalidOrder", "errorMessage": "amount: must be positive, got -500"}
    ),
    # CaptureMethod manual (the template's default): the card is authorised, not yet charged.
    "functions/CreatePaymentIntentFunction.json": Sample(
        "CreatePaymentIntentFunction", {"status": "requires_capture"}
    ),
    "functions/ReserveStockFunction.json": Sample("ReserveStockFunction", {"reserved": True}),
    "functions/SettleAuthorizationFunction.capture.json": Sample(
        "SettleAuthorizationFunction", {"status": "succeeded"}
    ),
    "functions/SettleAuthorizationFunction.release.json": Sample(
        "SettleAuthorizationFunction", {"status": "canceled", "reason": "not enough stock for SKU MUG-BLUE"}
    ),
    "functions/FulfilOrderFunction.json": Sample("FulfilOrderFunction", {"fulfilled": True}),
    "functions/NotifyCustomerFunction.json": Sample("NotifyCustomerFunction", {"sent": True}),
    "functions/RefundPaymentFunction.json": Sample(
        "RefundPaymentFunction", {"error": "OutOfStock", "reason": "not enough stock for SKU MUG-BLUE"}
    ),
    "functions/RegisterTaskTokenFunction.json": Sample("RegisterTaskTokenFunction", {"result": "waiting"}),
    # The order's execution is not running (there is none here): its paid PaymentIntent is completed.
    "functions/ReconcilePaymentsFunction.json": Sample("ReconcilePaymentsFunction", {"fulfilled": 1, "in_flight": 0}),
    "functions/ReconcilePaymentsFunction.sweep.json": Sample(
        "ReconcilePaymentsFunction", {"fulfilled": 0, "refunded": 0, "stray_refunded": 0}
    ),
    # A timeout that finds the card authorised leaves it to ReserveStock: it is not cancelled.
    "functions/SettlePaymentIntentFunction.json": Sample("SettlePaymentIntentFunction", {"status": "requires_capture"}),
    **{
        f"{folder}/payment_intent.{kind}.json": _webhook(result)
        for folder in ("webhook", "stripe")  # the HTTP API event, and the bare Stripe event it carries
        for kind, result in {
            "succeeded": "recorded",
            "payment_failed": "recorded",
            "canceled": "recorded",
            "processing": "progress",
            "requires_action": "progress",
            "amount_capturable_updated": "recorded",
        }.items()
    },  # fmt: skip
    "start/succeeded.json": _execution("SUCCEEDED", "PaymentSucceeded"),
    # After a decline the workflow waits for the customer to pay again on the same PaymentIntent; nobody does here.
    "start/declined.json": _execution("FAILED", "PaymentTimedOut"),
    "start/insufficient_funds.json": _execution("FAILED", "PaymentTimedOut"),
    "start/3ds.json": _execution("FAILED", "PaymentTimedOut"),
    "start/async_success.json": _execution("SUCCEEDED", "PaymentSucceeded"),
    "start/async_failure.json": _execution("FAILED", "PaymentTimedOut"),
    "start/no_payment_method.json": _execution("FAILED", "PaymentTimedOut"),
    "start/invalid_amount.json": _execution("FAILED", "OrderRejected"),
    "start/out_of_stock.json": _execution("FAILED", "OutOfStock"),
}


def sample_files() -> set[str]:
    return {str(path.relative_to(EVENTS)) for path in EVENTS.rglob("*.json") if path not in NOT_SAMPLES}


def prepare(cloud: LocalCloud, stripe: FakeStripe, target: str, event: Any) -> None:
    """Make the stack hold the order and the PaymentIntent the event names, as the steps before `target` would."""
    if not isinstance(event, dict) or target in (STATE_MACHINE, "AcceptOrderFunction"):
        return
    order = event.get("order")
    order_id = order.get("orderId") if isinstance(order, dict) else event.get("orderId")
    orders = {start["orderId"]: start for start in map(json.loads, map(Path.read_text, EVENTS.glob("start/*.json")))}
    if order_id not in orders:
        return
    execution_id = f"{cloud.state_machine_arn.replace(':stateMachine:', ':execution:')}:{order_id}"
    accepted, _ = cloud.invoke_function(
        "AcceptOrderFunction",
        {"order": orders[order_id], "executionId": execution_id, "executionStartedAt": "2026-11-30T09:00:00.000Z"},
    )
    paid_before = target == "ReconcilePaymentsFunction"  # it completes what a paid order's execution left
    if paid_before or ("paymentIntentId" in event and target != "CreatePaymentIntentFunction"):
        if "paymentIntentId" in event:
            stripe.next_payment_intent_ids.append(event["paymentIntentId"])
        request = {"order": accepted, "attempt": event.get("attempt", 1), "executionId": execution_id}
        created, _ = cloud.invoke_function("CreatePaymentIntentFunction", request)
        if target in PAID_BY_NOW and created.get("status") == "requires_capture":
            payment = {"order": accepted, "orderId": order_id, "paymentIntentId": created["paymentIntentId"]}
            cloud.invoke_function("ReserveStockFunction", payment)
            cloud.invoke_function("SettleAuthorizationFunction", {**payment, "action": "capture"})
