"""The Stripe request budget every function of the stack shares: a token bucket in DynamoDB.

Stripe limits an account to 100 requests a second in live mode and 25 in a sandbox, and each endpoint to 25 unless
noted; beyond that it answers 429 `rate_limit` (https://docs.stripe.com/rate-limits). The account may also serve
the merchant's other systems, so the stack keeps under a share of it, `StripeRequestsPerSecond`, whichever function
asks: a burst of payments then waits for its turn instead of earning 429s and retries.

The bucket is one item holding a theoretical arrival time, `tat` (the generic cell rate algorithm: a token bucket
written as one number). It holds a second's worth of tokens (`burst`) and earns `rate` a second: a request at t
takes the slot max(tat, t), moves tat on by 1/rate, and may go once slot - (burst - 1)/rate <= t. Each request
books its own slot with one conditional UpdateItem when the bucket has tokens to spare, two when it is busy, and
then sleeps until its slot: no polling, and no two callers are given the same slot, so no jitter is needed here. A
slot further off than the caller may wait is not booked; the caller gets StripeUnavailable, and the state
machine's Retry (backoff with full jitter) or the webhook's sender tries again later.

Times are the functions' clocks in microseconds (Lambda hosts keep time with the Amazon Time Sync Service; a skew
of a millisecond moves a slot by as much). The bucket fails open: if DynamoDB cannot be asked, the request goes
to Stripe unpaced, whose own 429s are still retried (payments.stripe_gateway). A limiter that failed closed would
turn a DynamoDB hiccup into a Stripe outage for every payment.
"""

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.aws_errors import error_code
from payments.errors import StripeUnavailable
from payments.observability import logger

MICROS = 1_000_000
KEY = {"bucket": "stripe"}


class StripeBudget:
    def __init__(
        self, dynamodb: Any, table: str, requests_per_second: float, *,
        clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
    ) -> None:  # fmt: skip
        if requests_per_second <= 0:
            raise ValueError("a Stripe request budget needs a rate above 0")
        self._dynamodb = dynamodb  # a client `with_python_values`
        self._table = table
        self._interval = max(1, round(MICROS / requests_per_second))  # µs between two tokens
        self._tolerance = (max(1, int(requests_per_second)) - 1) * self._interval  # a second's worth, less one
        self._clock, self._sleep = clock, sleep

    def take(self, max_wait: float) -> None:
        """Take a token, waiting up to `max_wait` seconds for one. StripeUnavailable when none is due by then."""
        now = int(self._clock() * MICROS)
        try:
            slot = self._book(now, latest=now + self._tolerance + int(max_wait * MICROS))
        except (ClientError, BotoCoreError) as error:
            logger.warning("Stripe request budget unreadable: this request goes unpaced", extra={"error": str(error)})
            return
        if slot is None:
            raise StripeUnavailable(f"Stripe request budget spent for the next {max_wait:.1f} s")
        wait = slot - self._tolerance - now
        if wait > 0:
            self._sleep(wait / MICROS)

    def pause(self, seconds: float) -> None:
        """Stripe answered `rate_limit`: the account is over its limit, whoever sent the rest. Empty the bucket for
        `seconds`, so that every function's next request waits (or goes back to its Retry) instead of adding to it."""
        until = int(self._clock() * MICROS) + int(seconds * MICROS) + self._tolerance
        try:
            self._update("SET tat = :until", "attribute_not_exists(tat) OR tat < :until", {":until": until})
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":  # already paused as long: nothing to do
                logger.warning("Could not pause the Stripe request budget", extra={"error": str(error)})
        except BotoCoreError as error:
            logger.warning("Could not pause the Stripe request budget", extra={"error": str(error)})

    def _book(self, now: int, latest: int) -> int | None:
        """The slot booked for this request, or None when the first free one is later than `latest`."""
        try:  # tokens to spare (the usual case): take one, counting from now
            self._update(
                "SET tat = :next", "attribute_not_exists(tat) OR tat <= :now",
                {":next": now + self._interval, ":now": now}, ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip
            return now
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            held = int(error.response.get("Item", {}).get("tat", {}).get("N", now))
        if held > latest:
            return None  # too far off: book nothing, which would only push every later request back
        try:  # busy: take the next slot, unless others took every slot up to `latest` meanwhile
            booked = self._update(
                "SET tat = tat + :interval", "tat <= :latest", {":interval": self._interval, ":latest": latest},
                ReturnValues="UPDATED_NEW",
            )  # fmt: skip
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return None
        return int(booked["Attributes"]["tat"]) - self._interval

    def _update(self, expression: str, condition: str, values: dict[str, int], **options: str) -> Any:
        return self._dynamodb.update_item(
            TableName=self._table, Key=KEY, UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeValues=values, **options,
        )  # fmt: skip
