"""Stripe credentials from one Secrets Manager secret, fetched through Powertools with caching.

The secret is JSON: {"api_key": "sk_...", "webhook_signing_secret": "whsec_...",
"previous_webhook_signing_secret": "whsec_..." (only while a rotation is under way)}.
"""

from dataclasses import dataclass

from aws_lambda_powertools.utilities import parameters

from payments.config import settings


@dataclass(frozen=True)
class StripeCredentials:
    api_key: str
    webhook_signing_secrets: tuple[str, ...]


def stripe_credentials() -> StripeCredentials:
    config = settings()
    secret = parameters.get_secret(
        config.stripe_secret_arn, transform="json", max_age=config.secret_max_age_seconds
    )
    signing = (secret.get("webhook_signing_secret"), secret.get("previous_webhook_signing_secret"))
    return StripeCredentials(
        api_key=secret.get("api_key", ""),
        webhook_signing_secrets=tuple(s for s in signing if s),
    )
