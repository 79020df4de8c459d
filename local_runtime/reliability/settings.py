"""What every part of a reliability run shares: the Stripe keys and webhook secrets, the stock, the stack parameters."""

from __future__ import annotations

from local_runtime.scenarios import LOCAL_PARAMETERS

DEFAULT_SEED = 4  # the issue this answers; `SEED=... make reliability` varies it
DEFAULT_SCHEDULES = 500
DEFAULT_CONCURRENT = 1000
API_KEY = "sk_test_reliability"
SIGNING_SECRET = "whsec_reliability"
PREVIOUS_SECRET = "whsec_reliability_previous"
WEBHOOK_PATH = "/webhooks/stripe"


STOCK = {"MUG-BLUE": 10_000_000, "TEA-EARL": 10_000_000, "LAST-ONE": 0}
# Every part runs under each CaptureMethod, on a stack of its own (docs/capture.md): manual (the template's default)
# authorises, reserves the stock, then captures; automatic charges at once and refunds what cannot be fulfilled.
CAPTURE_METHODS = ("manual", "automatic")
RELIABILITY_PARAMETERS = {**LOCAL_PARAMETERS, "LogLevel": "ERROR"}
# Timeout 3 s: the timeout path runs often.
SCHEDULE_PARAMETERS = {method: {**RELIABILITY_PARAMETERS, "CaptureMethod": method} for method in CAPTURE_METHODS}
# A long timeout where nothing should time out: under load, and while bad requests hit a waiting order.
PATIENT_PARAMETERS = {
    method: {**parameters, "PaymentTimeoutSeconds": "600"} for method, parameters in SCHEDULE_PARAMETERS.items()
}
# The load without the Stripe request budget. The local runtime applies DynamoDB requests one at a time, so with a
# thousand executions at once (and the schedules' process beside them on two cores) a token booking waits seconds,
# past the 3 s a Stripe call may wait for its token, and the budget refuses it as spent; each refusal is retried
# (StripeBusy), which adds bookings. Alone the paced load of 1,000 ends in 3 minutes; beside the schedules it had not
# ended after 25. The budget under a burst is tests/e2e/test_peak_load.py's subject; the schedules keep it.
LOAD_PARAMETERS = {
    method: {**parameters, "StripeRequestsPerSecond": "0"} for method, parameters in PATIENT_PARAMETERS.items()
}

CUSTOMER = "cus_Reliability01"  # every schedule's order is this Customer's
