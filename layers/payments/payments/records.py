"""DynamoDB adapters: payments (key PaymentIntent ID), orders (key order id), inventory (key SKU).

Conditional writes carry the invariants: an older Stripe event never overwrites a newer
state, a final outcome is written once, and stock is decremented once per order.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.transform import TransformationInjector, copy_dynamodb_params
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from payments.aws_errors import error_code, is_transient
from payments.errors import (
    AwsUnavailable,
    DuplicateOrder,
    OrderAlreadyFulfilled,
    OrderNotFound,
    OutOfStock,
    PaymentNotBound,
)
from payments.executions import ExecutionRef
from payments.orders import Order

_deserialize = TypeDeserializer().deserialize
QUEUED = "queued"  # an order waiting in the admission queue for its execution to start


def with_python_values(dynamodb: Any) -> Any:
    """Make a DynamoDB client take and return Python values, as boto3's Table resource does.

    These are the handlers `boto3.resource("dynamodb")` registers on its own client; a resource
    also loads boto3's resource models, ~50 ms of every cold start.
    """
    injector = TransformationInjector()
    for event, handler, unique_id in (
        ("provide-client-params.dynamodb", copy_dynamodb_params, "dynamodb-create-params-copy"),
        ("before-parameter-build.dynamodb", injector.inject_condition_expressions, "dynamodb-condition-expression"),
        ("before-parameter-build.dynamodb", injector.inject_attribute_value_input, "dynamodb-attr-value-input"),
        ("after-call.dynamodb", injector.inject_attribute_value_output, "dynamodb-attr-value-output"),
    ):
        dynamodb.meta.events.register(event, handler, unique_id=unique_id)
    return dynamodb


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the workflow speaks JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _transient(error: Exception) -> bool:
    return not isinstance(error, ClientError) or is_transient(error)


def _old_item(error: ClientError) -> dict[str, Any] | None:
    raw = error.response.get("Item")
    if not raw:
        return None
    return _plain({k: _deserialize(v) for k, v in raw.items()})


def _history_entry(status: str, now: datetime, **details: Any) -> dict[str, Any]:
    entry = {"status": status, "at": now.isoformat()}
    entry.update({k: v for k, v in details.items() if v is not None})
    return entry


class PaymentRecords:
    """One item per PaymentIntent: its task token, order, attempt, status and last Stripe event."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb  # a client `with_python_values`
        self._table = table

    def record_payment_intent(
        self, payment_intent_id: str, order_id: str, attempt: int, execution_id: str, status: str, now: datetime
    ) -> None:
        # if_not_exists: a webhook may have arrived first and recorded a newer status.
        self._update(
            Key={"paymentIntentId": payment_intent_id},
            UpdateExpression=(
                "SET orderId = :order, attempt = :attempt, executionId = :execution, "
                "#status = if_not_exists(#status, :status), createdAt = if_not_exists(createdAt, :now), "
                "updatedAt = :now"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":order": order_id, ":attempt": attempt, ":execution": execution_id,
                ":status": status, ":now": now.isoformat(),
            },
        )  # fmt: skip

    def store_task_token(
        self, payment_intent_id: str, task_token: str, expires_at: int, now: datetime, attempt: int = 1
    ) -> dict[str, Any]:
        """Store the token (with the attempt it waits for) and return the whole item, so the caller sees an
        outcome that came first."""
        response = self._update(
            Key={"paymentIntentId": payment_intent_id},
            UpdateExpression=(
                "SET taskToken = :token, tokenStoredAt = :now, expiresAt = :expires, updatedAt = :now, "
                "attempt = :attempt"
            ),
            ExpressionAttributeValues={
                ":token": task_token,
                ":now": now.isoformat(),
                ":expires": expires_at,
                ":attempt": attempt,
            },  # fmt: skip
            ReturnValues="ALL_NEW",
        )
        return _plain(response["Attributes"])

    def record_event(
        self,
        payment_intent_id: str,
        *,
        event_id: str,
        created: int,
        status: str,
        rank: int,
        outcome: dict[str, Any] | None,
        terminal: bool,
        order_id: str,
        attempt: int,
        now: datetime,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Apply a Stripe event unless a terminal outcome or a newer event is recorded already.

        Events are ordered by Stripe's `created` (seconds), then by rank within the same second
        (processing < payment_failed < succeeded). Returns (applied, item): the item after the
        write, or as it stood when the write was refused.
        """
        values: dict[str, Any] = {
            ":status": status, ":event": event_id, ":created": created, ":rank": rank,
            ":now": now.isoformat(), ":order": order_id, ":attempt": attempt,
        }  # fmt: skip
        update = (
            "SET #status = :status, lastEventId = :event, lastEventCreated = :created, lastEventRank = :rank, "
            "updatedAt = :now, orderId = if_not_exists(orderId, :order), attempt = if_not_exists(attempt, :attempt)"
        )
        if outcome is not None:
            update += ", outcome = :outcome, outcomeEventId = :event"
            values[":outcome"] = outcome
        if terminal:
            update += ", terminalEventId = :event"
        if status == "requires_capture":
            update += ", authorizedEventId = :event"  # what follows is the workflow's capture, or a release
        condition = (
            "attribute_not_exists(terminalEventId) AND (attribute_not_exists(lastEventCreated)"
            " OR lastEventCreated < :created OR (lastEventCreated = :created AND lastEventRank <= :rank))"
        )
        try:
            response = self._dynamodb.update_item(
                TableName=self._table,
                Key={"paymentIntentId": payment_intent_id},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False, _old_item(error)
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        return True, _plain(response["Attributes"])

    def record_status(self, payment_intent_id: str, status: str, now: datetime) -> None:
        """Record Stripe's own word on the PaymentIntent; a payment still processing has no outcome yet.

        A terminal outcome a webhook recorded meanwhile stands: it is newer than what we read.
        """
        clear = " REMOVE outcome, outcomeEventId" if status == "processing" else ""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"paymentIntentId": payment_intent_id},
                UpdateExpression="SET #status = :status, updatedAt = :now" + clear,
                ConditionExpression="attribute_exists(paymentIntentId) AND attribute_not_exists(terminalEventId)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": status, ":now": now.isoformat()},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException" and _old_item(error) is not None:
                return
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def get(self, payment_intent_id: str) -> dict[str, Any] | None:
        try:
            key = {"paymentIntentId": payment_intent_id}
            item = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error) from error
        return _plain(item) if item else None

    def _update(self, **request: Any) -> dict[str, Any]:
        try:
            return self._dynamodb.update_item(TableName=self._table, **request)
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error) from error

    @staticmethod
    def _unavailable(error: Exception) -> Exception:
        return AwsUnavailable(f"payments table: {error}") if _transient(error) else error


class OrderRecords:
    """One item per order with its status history; fulfilment decrements stock in the same transaction."""

    def __init__(self, dynamodb: Any, table: str, inventory_table: str) -> None:
        self._dynamodb = dynamodb  # a client `with_python_values`
        self._table = table
        self._inventory = inventory_table

    def claim(self, order: Order, execution: ExecutionRef, now: datetime) -> None:
        """Record the order as received, held by this execution. One order is one payment: any other
        execution (another name, or this name reused after Step Functions forgot it) gets DuplicateOrder.
        An order that waited in the admission queue is held by no execution yet: the first one claims it."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    **order.to_dict(),
                    "status": "received",
                    "executionId": execution.arn,
                    "executionStartedAt": execution.started_at,
                    "attempts": {},
                    "createdAt": now.isoformat(),
                    "updatedAt": now.isoformat(),
                    "history": [_history_entry("received", now)],
                },
                ConditionExpression="attribute_not_exists(orderId) OR "
                "(#status = :queued AND attribute_not_exists(executionId))",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":queued": QUEUED},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise self._unavailable(error) from error
            held = _old_item(error) or {}
            if (held.get("executionId"), held.get("executionStartedAt")) != (execution.arn, execution.started_at):
                raise DuplicateOrder(
                    f"order {order.order_id} is held by execution {held.get('executionId')} "
                    f"(started {held.get('executionStartedAt')}, order {held.get('status')})"
                ) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def note_queued(self, order: Order, now: datetime) -> bool:
        """Record that the order waits in the admission queue, unless an execution has claimed it already (False):
        the merchant API then tells a queued order from one it never heard of."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    **order.to_dict(),
                    "status": QUEUED,
                    "createdAt": now.isoformat(),
                    "updatedAt": now.isoformat(),
                    "history": [_history_entry(QUEUED, now)],
                },
                ConditionExpression="attribute_not_exists(orderId)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        return True

    def begin_attempt(self, order_id: str, attempt: int, now: datetime) -> dict[str, Any] | None:
        """Note that this attempt asks Stripe for a PaymentIntent. Returns None the first time; on a retry
        (or a redrive) the attempt as recorded: requestedAt, lastRequestAt, keyGeneration, paymentIntentId."""
        key = str(attempt)
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"orderId": order_id},
                UpdateExpression=(
                    "SET attempts.#attempt = :attempt, #status = :status, updatedAt = :now, "
                    "history = list_append(history, :entries)"
                ),
                ConditionExpression="attribute_exists(orderId) AND attribute_not_exists(attempts.#attempt)",
                ExpressionAttributeNames={"#attempt": key, "#status": "status"},
                ExpressionAttributeValues={
                    ":attempt": {"requestedAt": now.isoformat(), "lastRequestAt": now.isoformat(), "keyGeneration": 1},
                    ":status": "payment_requested",
                    ":now": now.isoformat(),
                    ":entries": [_history_entry("payment_requested", now, attempt=attempt)],
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise self._unavailable(error) from error
            held = _old_item(error)
            if held is None:
                raise OrderNotFound(order_id) from error
            return dict(held["attempts"][key])
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        return None

    def note_request(self, order_id: str, attempt: int, key_generation: int, now: datetime) -> None:
        """Note another request for the attempt's PaymentIntent, with its idempotency key's generation."""
        self._update_attempt(
            order_id, attempt, {"lastRequestAt": now.isoformat(), "keyGeneration": key_generation}, now
        )

    def record_payment_intent(self, order_id: str, attempt: int, payment_intent_id: str, now: datetime) -> str:
        """Bind the attempt to its PaymentIntent, once. Returns the PaymentIntent the attempt is bound to."""
        try:
            self._update_attempt(
                order_id, attempt, {"paymentIntentId": payment_intent_id}, now,
                condition="(attribute_not_exists(attempts.#attempt.paymentIntentId)"
                " OR attempts.#attempt.paymentIntentId = :paymentIntentId)",
            )  # fmt: skip
        except ClientError as error:
            held = _old_item(error)
            if held is None:
                raise OrderNotFound(order_id) from error
            return str(held["attempts"][str(attempt)]["paymentIntentId"])
        return payment_intent_id

    def _update_attempt(
        self, order_id: str, attempt: int, fields: dict[str, Any], now: datetime, condition: str = ""
    ) -> None:
        """Raises ClientError (ConditionalCheckFailedException, with the item) when the attempt was never begun
        or `condition` fails."""
        assignments = ", ".join(f"attempts.#attempt.{name} = :{name}" for name in fields)
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"orderId": order_id},
                UpdateExpression=f"SET {assignments}, updatedAt = :now",
                ConditionExpression=" AND ".join(filter(None, ["attribute_exists(attempts.#attempt)", condition])),
                ExpressionAttributeNames={"#attempt": str(attempt)},
                ExpressionAttributeValues={
                    **{f":{name}": value for name, value in fields.items()},
                    ":now": now.isoformat(),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise self._unavailable(error) from error
            raise
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def append_status(self, order_id: str, status: str, now: datetime, **details: Any) -> None:
        try:
            entry = _history_entry(status, now, **details)
            self._dynamodb.update_item(TableName=self._table, **self._status_update(order_id, status, now, [entry]))
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise OrderNotFound(order_id) from error
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def note(self, order_id: str, what: str, now: datetime, **details: Any) -> None:
        """Add to the order's history without changing its status."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"orderId": order_id},
                UpdateExpression="SET updatedAt = :now, history = list_append(history, :entries)",
                ConditionExpression="attribute_exists(orderId)",
                ExpressionAttributeValues={":now": now.isoformat(), ":entries": [_history_entry(what, now, **details)]},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise OrderNotFound(order_id) from error
            raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def reserve_refund(self, order_id: str, now: datetime) -> None:
        """Claim the order for a refund unless it was fulfilled (a fulfilment can commit and its step still
        fail). Raises OrderAlreadyFulfilled, or OrderNotFound."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"orderId": order_id},
                UpdateExpression="SET refundRequestedAt = if_not_exists(refundRequestedAt, :now)",
                ConditionExpression="attribute_exists(orderId) AND attribute_not_exists(fulfilledAt)",
                ExpressionAttributeValues={":now": now.isoformat()},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise self._unavailable(error) from error
            if _old_item(error) is None:
                raise OrderNotFound(order_id) from error
            raise OrderAlreadyFulfilled(f"order {order_id} was fulfilled: not refunding it") from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def fulfil(self, order: Order, attempt: int, payment_intent_id: str, now: datetime, by: str | None = None) -> bool:
        """Take every line item from stock and mark the order fulfilled, all or nothing, once, and only for the
        PaymentIntent recorded for the attempt; for an order whose stock is reserved for it, only the latter.

        Returns False when an earlier run already fulfilled it. Raises OutOfStock naming the SKU, or
        PaymentNotBound for a PaymentIntent that is not the attempt's.
        """
        held = self.get(order.order_id) or {}
        reserved = held.get("reservedPaymentIntentId") == payment_intent_id
        paid = _history_entry("paid", now, paymentIntentId=payment_intent_id, by=by)
        entries = [paid, _history_entry("fulfilled", now)]
        return self._transact(
            order, "fulfilled", entries, now, attempt=attempt, payment_intent_id=payment_intent_id,
            condition="attribute_not_exists(fulfilledAt) AND "
            + ("reservedPaymentIntentId = :pi" if reserved else "attempts.#attempt.paymentIntentId = :pi"),
            assignments="fulfilledAt = :now, paymentIntentId = :pi", stock=0 if reserved else -1,
        )  # fmt: skip

    def reserve(
        self, order: Order, attempt: int, payment_intent_id: str, expires_at: int | None, now: datetime
    ) -> bool:
        """Hold every line item for an authorised PaymentIntent until it is captured (or the authorisation is
        released), all or nothing, once. False when already reserved for it. Raises OutOfStock, PaymentNotBound."""
        return self._transact(
            order, "reserved", [_history_entry("reserved", now, paymentIntentId=payment_intent_id)], now,
            attempt=attempt, payment_intent_id=payment_intent_id,
            condition="attribute_not_exists(fulfilledAt) AND attribute_not_exists(reservedPaymentIntentId)"
            " AND attempts.#attempt.paymentIntentId = :pi",
            assignments="reservedPaymentIntentId = :pi, reservationExpiresAt = :expires",
            values={":expires": expires_at or 0}, stock=-1,
        )  # fmt: skip

    def release(self, order: Order, payment_intent_id: str, now: datetime, reason: str) -> bool:
        """Put the stock reserved for a PaymentIntent back (its authorisation cancelled or expired). False when
        there is nothing of it to release (released before, or fulfilled)."""
        try:
            return self._transact(
                order, "released", [_history_entry("released", now, paymentIntentId=payment_intent_id, reason=reason)],
                now, payment_intent_id=payment_intent_id,
                condition="attribute_not_exists(fulfilledAt) AND reservedPaymentIntentId = :pi",
                assignments="releasedAt = :now", remove="reservedPaymentIntentId", stock=+1,
            )  # fmt: skip
        except PaymentNotBound:
            return False

    def _transact(
        self, order: Order, status: str, entries: list[dict[str, Any]], now: datetime, *, payment_intent_id: str,
        condition: str, assignments: str, stock: int, attempt: int | None = None, values: dict[str, Any] | None = None,
        remove: str | None = None,
    ) -> bool:  # fmt: skip
        """One transaction: the order's update under `condition`, and each line item's stock moved by `stock`
        (-1 takes, +1 puts back, 0 leaves). False when the order's condition failed because it is fulfilled."""
        order_update = self._status_update(order.order_id, status, now, entries, condition=condition)
        order_update["UpdateExpression"] += f", {assignments}" + (f" REMOVE {remove}" if remove else "")
        if "#attempt" in condition:
            order_update["ExpressionAttributeNames"]["#attempt"] = str(attempt)
        order_update["ExpressionAttributeValues"].update({":pi": payment_intent_id, **(values or {})})
        order_update["TableName"] = self._table
        stock_updates = [
            {
                "Update": {
                    "TableName": self._inventory,
                    "Key": {"sku": item.sku},
                    "UpdateExpression": "SET available = available - :quantity",
                    "ConditionExpression": "available >= :quantity",
                    "ExpressionAttributeValues": {":quantity": item.quantity},
                }
                if stock < 0
                else {
                    "TableName": self._inventory,
                    "Key": {"sku": item.sku},
                    "UpdateExpression": "SET available = if_not_exists(available, :zero) + :quantity",
                    "ExpressionAttributeValues": {":quantity": item.quantity, ":zero": 0},
                }
            }
            for item in (order.items if stock else ())
        ]
        try:
            self._dynamodb.transact_write_items(TransactItems=[{"Update": order_update}, *stock_updates])
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise self._unavailable(error) from error
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                held = self.get(order.order_id)
                if held is None:
                    raise OrderNotFound(order.order_id) from error
                if "fulfilledAt" in held or held.get("reservedPaymentIntentId") == payment_intent_id:
                    return False
                raise PaymentNotBound(
                    f"PaymentIntent {payment_intent_id} is not the one recorded for attempt {attempt} "
                    f"of order {order.order_id}"
                ) from error
            for item, reason in zip(order.items, reasons[1:], strict=False):
                if reason == "ConditionalCheckFailed":
                    raise OutOfStock(item.sku) from error
            raise AwsUnavailable(f"stock transaction cancelled: {reasons}") from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        return True

    def get(self, order_id: str) -> dict[str, Any] | None:
        try:
            key = {"orderId": order_id}
            item = self._dynamodb.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise self._unavailable(error) from error
        return _plain(item) if item else None

    @staticmethod
    def _status_update(
        order_id: str, status: str, now: datetime, entries: list[dict[str, Any]],
        condition: str = "attribute_exists(orderId)",
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "Key": {"orderId": order_id},
            "UpdateExpression": (
                "SET #status = :status, updatedAt = :now, "
                "history = list_append(if_not_exists(history, :empty), :entries)"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":status": status,
                ":now": now.isoformat(),
                ":entries": entries,
                ":empty": [],
            },  # fmt: skip
        }

    @staticmethod
    def _unavailable(error: Exception) -> Exception:
        return AwsUnavailable(f"orders: {error}") if _transient(error) else error
