"""Bad start inputs: each must end in OrderRejected, its cause naming the field, nothing asked of Stripe."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local_runtime.reliability.schedules import PAYMENTS, order_input
from local_runtime.reliability.stack import Stack
from local_runtime.scenarios import final_state


@dataclass(frozen=True)
class BadStart:
    name: str
    field: str  # the Fail state's cause must name it
    make: Callable[[dict[str, Any]], Any]  # a valid order -> the bad input


def _set(**changes: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda order: {**order, **changes}


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda order: {k: v for k, v in order.items() if k != key}


def _item(index: int, **changes: Any) -> Callable[[dict[str, Any]], Any]:
    def make(order: dict[str, Any]) -> dict[str, Any]:
        items = [dict(item) for item in order["items"]]
        items[index].update(changes)
        return {**order, "items": [{k: v for k, v in item.items() if v is not ...} for item in items]}

    return make


BAD_STARTS: tuple[BadStart, ...] = (
    BadStart("input is a JSON array", "input", lambda order: [order]),
    BadStart("input is a string", "input", lambda order: "order"),
    BadStart("input is a number", "input", lambda order: 42),
    BadStart("orderId missing", "orderId", _drop("orderId")),
    BadStart("orderId with a space", "orderId", _set(orderId="order 1")),
    BadStart("orderId of 65 characters", "orderId", _set(orderId="o" * 65)),
    BadStart("orderId is a number", "orderId", _set(orderId=1234)),
    BadStart("currency missing", "currency", _drop("currency")),
    BadStart("currency not supported", "currency", _set(currency="xyz")),
    BadStart("currency is a number", "currency", _set(currency=840)),
    BadStart("amount missing", "amount", _drop("amount")),
    BadStart("amount is a string", "amount", _set(amount="3000")),
    BadStart("amount is a float", "amount", _set(amount=3000.5)),
    BadStart("amount is a boolean", "amount", _set(amount=True)),
    BadStart("amount is zero", "amount", _set(amount=0)),
    BadStart("amount is negative", "amount", _set(amount=-3000)),
    BadStart("amount over Stripe's maximum", "amount", _set(amount=100_000_000)),
    BadStart("amount under Stripe's minimum", "amount", _set(amount=49, items=[{"sku": "MUG-BLUE", "quantity": 1}])),
    BadStart("customer missing", "customer", _drop("customer")),
    BadStart("customer is a string", "customer", _set(customer="cus_123")),
    BadStart("customer without id or email", "customer", _set(customer={})),
    BadStart("customer.id not a Stripe customer", "customer.id", _set(customer={"id": "ada"})),
    BadStart("customer.email not an address", "customer.email", _set(customer={"email": "ada at shop"})),
    BadStart("customer.email empty", "customer.email", _set(customer={"email": "  "})),
    BadStart("paymentMethod not a PaymentMethod id", "paymentMethod", _set(paymentMethod="4242424242424242")),
    BadStart("paymentMethod empty", "paymentMethod", _set(paymentMethod="")),
    BadStart("items missing", "items", _drop("items")),
    BadStart("items empty", "items", _set(items=[])),
    BadStart("items is an object", "items", _set(items={"sku": "MUG-BLUE", "quantity": 3})),
    BadStart("item is a string", "items[0]", _set(items=["MUG-BLUE"])),
    BadStart("item without sku", "items[0].sku", _item(0, sku=...)),
    BadStart("item quantity zero", "items[1].quantity", _item(1, quantity=0)),
    BadStart("item quantity a string", "items[0].quantity", _item(0, quantity="2")),
    BadStart("item unitAmount negative", "items[0].unitAmount", _item(0, unitAmount=-1)),
    BadStart("the same SKU twice", "items", _set(items=[{"sku": "MUG-BLUE", "quantity": 1}] * 2)),
    BadStart("line totals differ from the amount", "items", _set(amount=2999)),
)


@dataclass
class StartResult:
    name: str
    final_state: str
    error: str
    cause: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_bad_starts(stack: Stack, prefix: str, cases: tuple[BadStart, ...] = BAD_STARTS) -> list[StartResult]:
    """Every bad start input, a few at a time; none may reach Stripe."""
    payment_intents = len(stack.stripe.payment_intents)
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(
            pool.map(lambda item: run_bad_start(stack, item[1], f"{prefix}-{item[0]:03d}"), enumerate(cases))
        )
    if len(stack.stripe.payment_intents) != payment_intents:
        for result in results:
            result.problems.append("Stripe was asked for a payment while bad inputs ran")
    return results


def run_bad_start(stack: Stack, case: BadStart, name: str) -> StartResult:
    order = order_input(name, PAYMENTS["card"])
    bad = case.make(order)
    arn = stack.start(bad, name)
    finished = stack.watcher.wait(arn, 60)
    _, history = stack.execution(arn)
    failed = next((e["executionFailedEventDetails"] for e in history if e["type"] == "ExecutionFailed"), {})
    end = final_state(history)
    result = StartResult(case.name, end, failed.get("error", ""), failed.get("cause", ""), [])
    if not finished:
        result.problems.append("did not finish")
    if end != "OrderRejected" or result.error != "InvalidOrder":
        result.problems.append(f"ended in {end} ({result.error}), not OrderRejected (InvalidOrder)")
    if not result.cause.startswith(case.field + ":"):
        result.problems.append(f"cause {result.cause!r} does not name {case.field}")
    if stack.order(name):
        result.problems.append("an order was recorded")
    if stack.courier.payment_intents_of(name):
        result.problems.append("Stripe was asked for a payment")
    return result
