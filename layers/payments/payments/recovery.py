"""Starts the reconciler for one PaymentIntent, without waiting for it (an asynchronous Lambda invoke)."""

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.errors import AwsUnavailable


class Recovery:
    def __init__(self, lambda_client: Any, reconciler_function: str) -> None:
        self._client = lambda_client
        self._function = reconciler_function

    def __call__(self, payment_intent_id: str) -> None:
        try:
            self._client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                Payload=json.dumps({"paymentIntentId": payment_intent_id}).encode(),
            )
        except (ClientError, BotoCoreError) as error:  # Stripe redelivers after our 503, and the sweep follows
            raise AwsUnavailable(f"starting the reconciler: {error}") from error
