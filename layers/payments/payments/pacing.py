"""The Stripe request budget every function of the stack shares: a token bucket in DynamoDB.

Stripe limits an account to 100 requests a second in live mode and 25 in a sandbox, and each endpoint to 25 unless
noted; beyond that it answers 429 `rate_limit` (https://docs.stripe.com/rate-limits). The account may also serve
the merchant's other systems, so the stack keeps under a share of it, `StripeRequestsPerSecond`, whichever function
asks: a burst of payments then waits for its turn instead of earning 429s and retries.

The bucket is one item holding a theoretical arrival time, `tat` (the generic cell rate algorithm: a token bucket
written as one number). It holds a second's worth of tokens (`burst`) and earns `rate` a second: a request at t
takes the slot max(tat, t), moves tat on by 1/rate, and may go once slot - (burst - 1)/rate <= t. Each request
books its own slot with one conditional UpdateItem (a second one only when the bucket turned from idle to busy, or
back, since the function last looked), then sleeps until its slot: no polling, and no two callers are given the
same slot, so no jitter is needed here. A slot further off than the caller may wait is not booked; the caller gets
StripeBusy, and the state machine's Retry for it (patient, with full jitter) or the webhook's sender tries again.

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
from payments.errors import StripeBusy
from payments.observability import logger

MICROS = 1_000_000
KEY = {"bucket": "stripe"}
MISSED = -1  # a booking write whose condition did not fit the bucket: the other one does


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
        self._last_seen = 0  # the bucket's tat as this function last saw it: which write to try first

    def take(self, max_wait: float) -> None:
        """Take a token, waiting up to `max_wait` seconds for one. StripeBusy when none is due by then."""
        now = int(self._clock() * MICROS)
        try:
            slot = self._book(now, latest=now + self._tolerance + int(max_wait * MICROS))
        except (ClientError, BotoCoreError) as error:
            logger.warning("Stripe request budget unreadable: this request goes unpaced", extra={"error": str(error)})
            return
        if slot is None:
            raise StripeBusy(f"Stripe request budget spent for the next {max_wait:.1f} s")
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
        """The slot booked for this request, or None when the first free one is later than `latest`. The write that
        fits the bucket as this function last saw it goes first, so each regime costs one write; a second write only
        when the bucket changed regime since."""
        attempts = (self._book_busy, self._book_idle) if self._last_seen > now else (self._book_idle, self._book_busy)
        for attempt in attempts:
            slot = attempt(now, latest)
            if slot != MISSED:
                return slot
        return None

    def _book_idle(self, now: int, latest: int) -> int | None:
        """Tokens to spare: take one, counting from now."""
        try:
            self._update(
                "SET tat = :next", "attribute_not_exists(tat) OR tat <= :now",
                {":next": now + self._interval, ":now": now}, ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip
        except ClientError as error:
            return self._missed(error, latest)
        self._last_seen = now + self._interval
        return now

    def _book_busy(self, now: int, latest: int) -> int | None:
        """Busy: take the next slot, unless it is later than `latest` (booking it would only push others back)."""
        try:
            booked = self._update(
                "SET tat = tat + :interval", "tat > :now AND tat <= :latest",
                {":interval": self._interval, ":now": now, ":latest": latest},
                ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )  # fmt: skip
        except ClientError as error:
            return self._missed(error, latest)
        self._last_seen = int(booked["Attributes"]["tat"])
        return self._last_seen - self._interval

    def _missed(self, error: ClientError, latest: int) -> int | None:
        """After a write whose condition failed: MISSED (the other write fits), or None (no slot by `latest`)."""
        if error_code(error) != "ConditionalCheckFailedException":
            raise error
        self._last_seen = int(error.response.get("Item", {}).get("tat", {}).get("N", 0))
        return None if self._last_seen > latest else MISSED

    def _update(self, expression: str, condition: str, values: dict[str, int], **options: str) -> Any:
        return self._dynamodb.update_item(
            TableName=self._table, Key=KEY, UpdateExpression=expression, ConditionExpression=condition,
            ExpressionAttributeValues=values, **options,
        )  # fmt: skip
