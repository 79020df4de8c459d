"""Adapters built once per cold start from the settings (and, for Stripe, the cached secret)."""

from functools import cache

import boto3
from botocore.config import Config

from payments.admission import AdmissionQueue
from payments.config import settings
from payments.credentials import stripe_credentials
from payments.executions import Executions
from payments.notifications import Mailer
from payments.pacing import StripeBudget
from payments.records import OrderRecords, PaymentRecords, with_python_values
from payments.recovery import Recovery
from payments.stripe_gateway import StripeGateway
from payments.task_tokens import TaskTokens

# Fail fast: the state machine's Retry and Stripe's redelivery retry for longer and better than a
# Lambda sleeping through botocore's backoff (the webhook has 10 s to answer).
AWS_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)


@cache
def _dynamodb():  # type: ignore[no-untyped-def]
    return with_python_values(boto3.client("dynamodb", config=AWS_CLIENT_CONFIG))


@cache
def payment_records() -> PaymentRecords:
    return PaymentRecords(_dynamodb(), settings().payments_table)


@cache
def order_records() -> OrderRecords:
    return OrderRecords(_dynamodb(), settings().orders_table, settings().inventory_table)


@cache
def task_tokens() -> TaskTokens:
    return TaskTokens(boto3.client("stepfunctions", config=AWS_CLIENT_CONFIG))


@cache
def executions() -> Executions:
    return Executions(boto3.client("stepfunctions", config=AWS_CLIENT_CONFIG), settings().state_machine_arn)


@cache
def admission_queue() -> AdmissionQueue:
    return AdmissionQueue(lambda: boto3.client("sqs", config=AWS_CLIENT_CONFIG), settings().admission_queue_url)


@cache
def recovery() -> Recovery | None:
    function = settings().reconciler_function
    return Recovery(lambda: boto3.client("lambda", config=AWS_CLIENT_CONFIG), function) if function else None


@cache
def mailer() -> Mailer | None:
    sender = settings().receipt_sender
    return Mailer(boto3.client("sesv2", config=AWS_CLIENT_CONFIG), sender) if sender else None


def stripe_gateway() -> StripeGateway:
    # The secret is cached by Powertools; a rotated API key gets a new client.
    return _stripe_gateway(stripe_credentials().api_key)


@cache
def stripe_budget() -> StripeBudget | None:
    """The Stripe request budget every function shares; None (unpaced) when StripeRequestsPerSecond is 0."""
    config = settings()
    if config.stripe_requests_per_second <= 0 or not config.rate_limit_table:
        return None
    return StripeBudget(_dynamodb(), config.rate_limit_table, config.stripe_requests_per_second)


@cache
def _stripe_gateway(api_key: str) -> StripeGateway:
    config = settings()
    return StripeGateway.connect(
        api_key, config.stripe_api_base, config.stripe_network_retries, config.app_id, config.checkout_page_url,
        config.capture_method, stripe_budget(),
    )  # fmt: skip
