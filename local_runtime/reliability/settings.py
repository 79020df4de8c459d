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
# Its expectations are those of CaptureMethod automatic (charged at once, refunded when out of stock).
RELIABILITY_PARAMETERS = {**LOCAL_PARAMETERS, "CaptureMethod": "automatic", "LogLevel": "ERROR"}
SCHEDULE_PARAMETERS = RELIABILITY_PARAMETERS  # timeout 3 s: the timeout path runs often
# A long timeout where nothing should time out: under load, and while bad requests hit a waiting order.
PATIENT_PARAMETERS = {**RELIABILITY_PARAMETERS, "PaymentTimeoutSeconds": "600"}

CUSTOMER = "cus_Reliability01"  # every schedule's order is this Customer's
