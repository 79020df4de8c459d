"""Starts the reconciler for one PaymentIntent, without waiting for it (an asynchronous Lambda invoke)."""

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.errors import AwsUnavailable


class Recovery:
    """The Lambda client is made on first use: the webhook, whose cold start Stripe waits on, rarely needs it."""

    def __init__(self, lambda_client: Callable[[], Any], reconciler_function: str) -> None:
        self._make_client = lambda_client
        self._function = reconciler_function

    @cached_property
    def _client(self) -> Any:
        return self._make_client()

    def __call__(self, payment_intent_id: str) -> None:
        try:
            self._client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                Payload=json.dumps({"paymentIntentId": payment_intent_id}).encode(),
            )
        except (ClientError, BotoCoreError) as error:  # Stripe redelivers after our 503, and the sweep follows
            raise AwsUnavailable(f"starting the reconciler: {error}") from error
