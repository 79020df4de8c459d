"""Stripe credentials from one Secrets Manager secret, fetched through Powertools with caching.

The secret is JSON: {"api_key": "sk_...", "webhook_signing_secret": "whsec_...",
"previous_webhook_signing_secret": "whsec_..." (only while a rotation is under way)}.
"""

from dataclasses import dataclass

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from payments.config import settings


@dataclass(frozen=True)
class StripeCredentials:
    api_key: str
    webhook_signing_secrets: tuple[str, ...]


def stripe_credentials() -> StripeCredentials:
    config = settings()
    if "secrets" not in DEFAULT_PROVIDERS:
        # get_secret would build its provider on a boto3 Session of its own, which parses botocore's
        # endpoint and model data a second time (~90 ms of a cold start): give it the functions' session.
        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    secret = parameters.get_secret(
        config.stripe_secret_arn, transform="json", max_age=config.secret_max_age_seconds
    )
    signing = (secret.get("webhook_signing_secret"), secret.get("previous_webhook_signing_secret"))
    return StripeCredentials(
        api_key=secret.get("api_key", ""),
        webhook_signing_secrets=tuple(s for s in signing if s),
    )
