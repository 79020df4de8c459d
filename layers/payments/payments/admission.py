"""Admission: a payment that Step Functions cannot start now waits in a queue instead of failing.

The merchant API starts each order's execution itself: on the happy path nothing is queued, so nothing is added to
its latency or cost. When StartExecution is throttled or fails for AWS's own reasons after the SDK's retries (its
API quotas are token buckets, and an account holds at most 1,000,000 open executions, beyond which it answers
ExecutionLimitExceeded: docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html), the order goes on the
admission queue, its record says "queued", and the API still answers 202. StartQueuedPaymentsFunction reads the
queue (at most AdmissionDrainConcurrency batches at once, which bounds the rate it starts them at) and starts each
execution exactly as the API would have: named by the order id, so that one order stays one payment.

Only a validated order is ever queued. A message comes again after the queue's visibility timeout while Step
Functions refuses to start it, and goes to the dead-letter queue (alarmed) after maxReceiveCount receives.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.errors import AwsUnavailable, InvalidOrder, OrderAlreadyStarted
from payments.executions import Executions
from payments.observability import logger
from payments.orders import Order, parse_order


class AdmissionQueue:
    """The SQS client is made on first use: StartPayment needs it only when Step Functions refuses a start."""

    def __init__(self, sqs_client: Callable[[], Any], queue_url: str) -> None:
        self._make_client = sqs_client
        self._url = queue_url

    @cached_property
    def _client(self) -> Any:
        return self._make_client()

    def put(self, order: Order) -> None:
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=json.dumps(order.to_dict()))
        except (ClientError, BotoCoreError) as error:
            raise AwsUnavailable(f"admission queue: {error}") from error


@dataclass(frozen=True)
class QueuedStart:
    message_id: str
    body: str


def start_queued(messages: list[QueuedStart], executions: Executions) -> list[str]:
    """Start each queued order's execution. Returns the ids of the messages to try again later.

    Started, or already started (ExecutionAlreadyExists: this message's earlier start, or another request's for
    the same order, whose execution is the order's one payment), the message is done; a second message for an
    order is harmless. Once StartExecution is throttled, the rest of the batch waits too: it would be refused as
    well, and each refusal spends the quota it waits for."""
    retry: list[str] = []
    throttled = False
    for message in messages:
        if throttled:
            retry.append(message.message_id)
            continue
        try:
            order = parse_order(json.loads(message.body))
            execution_arn = executions.start(order.order_id, order.to_dict())
        except OrderAlreadyStarted:
            logger.info("Queued order already started: nothing to do", extra={"message_id": message.message_id})
        except AwsUnavailable:
            logger.warning("Step Functions refuses starts for now; the rest of the batch comes again")
            retry.append(message.message_id)
            throttled = True
        except (ValueError, InvalidOrder, ClientError):  # it comes again, then waits in the dead-letter queue
            logger.exception("Queued order cannot be started", extra={"message_id": message.message_id})
            retry.append(message.message_id)
        else:
            logger.info("Queued order started", extra={"order_id": order.order_id, "execution_arn": execution_arn})
    return retry
