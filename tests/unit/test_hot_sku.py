"""A hot SKU (docs/peak-load.md): contention on its stock item is retried, never refunded, and never oversells.

DynamoDB cancels a transaction that conflicts with another one on the same item (TransactionCanceledException with
the reason TransactionConflict), or that finds the item's partition throttled (ThrottlingError); a single write that
meets a transaction in flight gets TransactionConflictException
(docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/TransactionCanceledException.html).
None of these is the order's answer: the stock step raises AwsUnavailable, which the state machine retries (backoff,
full jitter) and then parks; only a failed stock condition is OutOfStock, the one way to a refund or a release.
"""

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.retries.standard import ThrottledRetryableChecker

from payments.adapters import AWS_CLIENT_CONFIG
from payments.errors import AwsUnavailable, OutOfStock
from payments.executions import ExecutionRef
from payments.orders import Order, parse_order
from payments.records import OrderRecords
from tests.conftest import sample_order
from tests.unit._support import client_error, unique

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HOT = "MUG-BLUE"
ASL = json.loads((Path(__file__).parents[2] / "statemachine" / "payment_workflow.asl.json").read_text())["States"]


def cancelled(*reasons: str) -> ClientError:
    """TransactWriteItems cancelled, with one reason per item as DynamoDB lists them (the order's update first)."""
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": f"Transaction cancelled {list(reasons)}"},
            "CancellationReasons": [{"Code": reason} for reason in reasons],
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "TransactWriteItems",
    )


class Contended:
    """The DynamoDB client, with the next transactions on the hot item failing as a flash sale makes them fail."""

    def __init__(self, client: Any) -> None:
        self._client, self.failures = client, list[ClientError]()

    def transact_write_items(self, **request: Any) -> Any:
        if self.failures and HOT in json.dumps(request, default=str):
            raise self.failures.pop(0)
        return self._client.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def contended(dynamodb: Any) -> Contended:
    return Contended(dynamodb)


@pytest.fixture
def orders(contended: Contended, tables: dict[str, Any]) -> OrderRecords:
    return OrderRecords(contended, "OrdersTable", "InventoryTable")


def paid_order(orders: OrderRecords, quantity: int = 1) -> Order:
    """An order for the hot SKU, claimed, its first attempt bound to its PaymentIntent: ready for its stock step."""
    order = parse_order(sample_order(orderId=unique("hot"), items=[{"sku": HOT, "quantity": quantity}]))
    orders.claim(order, ExecutionRef(f"arn:exec:{order.order_id}", "t"), NOW)
    orders.begin_attempt(order.order_id, 1, NOW)
    orders.record_payment_intent(order.order_id, 1, f"pi_{order.order_id}", NOW)
    return order


def available(tables: dict[str, Any]) -> int:
    return int(tables["InventoryTable"].get_item(Key={"sku": HOT}, ConsistentRead=True)["Item"]["available"])


@pytest.mark.parametrize(
    "contention",
    [
        pytest.param(cancelled("None", "TransactionConflict"), id="transaction-conflict"),
        pytest.param(cancelled("None", "ThrottlingError"), id="hot-partition-throttled"),
        pytest.param(cancelled("TransactionConflict", "None"), id="order-item-conflict"),
        pytest.param(client_error("TransactionConflictException", "TransactWriteItems"), id="conflict-exception"),
        pytest.param(client_error("ProvisionedThroughputExceededException", "TransactWriteItems"), id="throughput"),
        pytest.param(client_error("ThrottlingException", "TransactWriteItems"), id="throttling"),
    ],
)
@pytest.mark.parametrize("step", ["fulfil", "reserve"])
def test_contention_on_the_hot_item_is_transient_and_takes_nothing(
    orders: OrderRecords, contended: Contended, tables: dict[str, Any], contention: ClientError, step: str
) -> None:
    tables["InventoryTable"].put_item(Item={"sku": HOT, "available": 5})
    order = paid_order(orders)
    contended.failures.append(contention)
    run = {
        "fulfil": lambda: orders.fulfil(order, 1, f"pi_{order.order_id}", NOW),
        "reserve": lambda: orders.reserve(order, 1, f"pi_{order.order_id}", None, NOW),
    }[step]

    with pytest.raises(AwsUnavailable):  # not OutOfStock: no refund, no release
        run()
    assert available(tables) == 5

    assert run() is True  # the state machine's Retry runs the step again: the stock is taken once
    assert available(tables) == 4


def test_a_burst_on_one_sku_oversells_nothing_and_refuses_only_for_want_of_stock(
    orders: OrderRecords, contended: Contended, tables: dict[str, Any]
) -> None:
    # Given 40 paid orders for the hot SKU and stock for 25, and a third of the stock transactions contended
    tables["InventoryTable"].put_item(Item={"sku": HOT, "available": 25})
    burst = [paid_order(orders) for _ in range(40)]
    rng = random.Random(14)
    fulfilled, out_of_stock = [], []

    for order in burst:
        while True:  # each execution's FulfilOrder, retried by the state machine until it is not transient
            if rng.random() < 1 / 3:
                contended.failures.append(cancelled("None", rng.choice(["TransactionConflict", "ThrottlingError"])))
            try:
                orders.fulfil(order, 1, f"pi_{order.order_id}", NOW)
            except AwsUnavailable:
                continue
            except OutOfStock:
                out_of_stock.append(order.order_id)
                assert available(tables) == 0  # refused only once the stock is gone, never for contention
            else:
                fulfilled.append(order.order_id)
            break

    assert (len(fulfilled), len(out_of_stock), available(tables)) == (25, 15, 0)


def test_the_state_machine_retries_contention_in_the_stock_steps_and_routes_only_out_of_stock_to_money_back() -> None:
    for step in ("ReserveStock", "FulfilOrder"):
        retried = {error for retry in ASL[step]["Retry"] for error in retry["ErrorEquals"]}
        assert "AwsUnavailable" in retried
        assert all(retry.get("JitterStrategy") == "FULL" for retry in ASL[step]["Retry"])
        to_money_back = {c["Next"]: c["ErrorEquals"] for c in ASL[step]["Catch"]
                         if c["Next"] in ("ReleaseAuthorization", "RefundPayment")}  # fmt: skip
        assert list(to_money_back.values()) == [["OutOfStock"]], step
        (catch_all,) = [c for c in ASL[step]["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all["Next"] == f"Park{step}"  # what the Retry could not get through parks, never refunds


def test_the_sdk_retries_a_throttled_hot_item_and_leaves_a_conflict_to_the_state_machine() -> None:
    # botocore's standard mode (AWS_CLIENT_CONFIG) retries throttling errors itself, three attempts in all; a
    # transaction conflict is no throttling error, so it reaches the step and its Retry
    assert AWS_CLIENT_CONFIG.retries == {"mode": "standard", "total_max_attempts": 3}
    throttled = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    assert {"ThrottlingException", "ProvisionedThroughputExceededException"} <= throttled
    assert "TransactionConflictException" not in throttled and "TransactionCanceledException" not in throttled
