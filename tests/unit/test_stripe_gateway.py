"""stripe_gateway: every PaymentIntent create carries an idempotency key from order and attempt."""

from types import SimpleNamespace
from typing import Any

import stripe

from payments.orders import parse_order
from payments.stripe_gateway import StripeGateway, payment_idempotency_key
from tests.conftest import sample_order
from tests.unit._support import APP_ID


class _FakePaymentIntents:
    def __init__(self) -> None:
        self.creates: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def create(self, params: dict[str, Any], options: dict[str, Any]) -> stripe.PaymentIntent:
        self.creates.append((params, options))
        return stripe.PaymentIntent.construct_from(
            {"id": "pi_gw_1", "object": "payment_intent", "status": "succeeded", "amount": params["amount"],
             "currency": params["currency"], "metadata": params["metadata"]},
            "sk_test_x",
        )  # fmt: skip


def gateway() -> tuple[StripeGateway, _FakePaymentIntents]:
    intents = _FakePaymentIntents()
    client = SimpleNamespace(v1=SimpleNamespace(payment_intents=intents))
    return StripeGateway(client, APP_ID), intents  # type: ignore[arg-type]


def test_retries_of_one_attempt_reuse_the_idempotency_key() -> None:
    stripe_gateway, intents = gateway()
    order = parse_order(sample_order())

    stripe_gateway.create_payment_intent(order, 1, "arn:exec")
    stripe_gateway.create_payment_intent(order, 1, "arn:exec")  # a Lambda or state-machine retry
    stripe_gateway.create_payment_intent(order, 2, "arn:exec")  # the next attempt

    keys = [options["idempotency_key"] for _, options in intents.creates]
    assert keys == ["order-1001:attempt-1:create", "order-1001:attempt-1:create", "order-1001:attempt-2:create"]
    assert keys[0] == payment_idempotency_key("order-1001", 1)


def test_payment_intent_metadata_ties_it_to_order_attempt_and_app() -> None:
    stripe_gateway, intents = gateway()

    view = stripe_gateway.create_payment_intent(parse_order(sample_order()), 3, "arn:exec:9")

    params, _ = intents.creates[0]
    assert params["metadata"] == {
        "app_id": APP_ID,
        "order_id": "order-1001",
        "attempt": "3",
        "execution_id": "arn:exec:9",
    }
    assert (params["amount"], params["currency"], params["customer"]) == (2500, "usd", "cus_Q1w2E3r4")
    assert (params["payment_method"], params["confirm"]) == ("pm_card_visa", True)
    assert (view.id, view.status) == ("pi_gw_1", "succeeded")
