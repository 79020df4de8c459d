"""The one place that reads configuration: environment variables, once per cold start."""

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    payments_table: str
    orders_table: str
    inventory_table: str
    stripe_secret_arn: str
    stripe_api_base: str  # empty in production; a local Stripe in development
    app_id: str  # tags the PaymentIntents this deployment creates
    receipt_sender: str
    payment_timeout_seconds: int
    webhook_tolerance_seconds: int
    max_webhook_body_bytes: int
    stripe_network_retries: int
    secret_max_age_seconds: int
    reconciler_function: str  # empty: the webhook starts no recovery
    checkout_page_url: str  # where the customer pays: return_url, and the link in a "pay again" e-mail
    state_machine_arn: str  # the merchant API starts payments on it
    capture_method: str  # manual: cards are authorised, the stock reserved, then captured; automatic: charged at once
    reconcile_grace_seconds: int
    reconcile_lookback_seconds: int
    admission_queue_url: str  # the merchant API queues a start that Step Functions cannot take now
    rate_limit_table: str  # holds the Stripe request budget's token bucket
    stripe_requests_per_second: float  # the budget every function shares; 0: unpaced


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw else default


@cache
def settings() -> Settings:
    env = os.environ.get
    return Settings(
        payments_table=env("PAYMENTS_TABLE", ""),
        orders_table=env("ORDERS_TABLE", ""),
        inventory_table=env("INVENTORY_TABLE", ""),
        stripe_secret_arn=env("STRIPE_SECRET_ARN", ""),
        stripe_api_base=env("STRIPE_API_BASE", ""),
        app_id=env("APP_ID", "stripe-payments"),
        receipt_sender=env("RECEIPT_SENDER", ""),
        payment_timeout_seconds=_int("PAYMENT_TIMEOUT_SECONDS", 86400),
        webhook_tolerance_seconds=_int("WEBHOOK_TOLERANCE_SECONDS", 300),
        max_webhook_body_bytes=_int("MAX_WEBHOOK_BODY_BYTES", 65536),
        stripe_network_retries=_int("STRIPE_NETWORK_RETRIES", 2),
        secret_max_age_seconds=_int("SECRET_MAX_AGE_SECONDS", 300),
        reconciler_function=env("RECONCILER_FUNCTION", ""),
        checkout_page_url=env("CHECKOUT_PAGE_URL", ""),
        state_machine_arn=env("STATE_MACHINE_ARN", ""),
        capture_method=env("CAPTURE_METHOD", "manual"),
        reconcile_grace_seconds=60 * _int("RECONCILE_AFTER_MINUTES", 30),
        reconcile_lookback_seconds=_int("RECONCILE_LOOKBACK_SECONDS", 172800),
        admission_queue_url=env("ADMISSION_QUEUE_URL", ""),
        rate_limit_table=env("RATE_LIMIT_TABLE", ""),
        stripe_requests_per_second=_float("STRIPE_REQUESTS_PER_SECOND", 0),
    )
