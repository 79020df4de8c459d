"""No secret reaches a log, the execution history or a table, on the paths that handle one.

The paths: a card charged; the customer paying on the checkout page (the merchant API hands the
client_secret over while the customer can act) after a decline, after failing 3-D Secure, and with a
saved card the bank wanted authenticated; and a refund. The secrets: the Stripe API key, the webhook
signing secret, and every PaymentIntent's client_secret (Stripe returns it with each PaymentIntent; it
lets a browser confirm the payment).
Task tokens and customers' e-mail addresses belong in the execution history, never in a log.
"""

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.scenarios import SCENARIOS, order_for, payment_intents_of, run_scenario

pytestmark = pytest.mark.e2e
PATHS = (
    "succeeded", "declined, then another card", "3ds failure, then another card", "saved card needs the customer",
    "out of stock",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    logs: str
    histories: dict[str, list[dict[str, Any]]]  # order id -> execution history events
    tables: dict[str, list[dict[str, Any]]]  # logical id -> items
    secrets: dict[str, str]  # what it is -> value


@contextlib.contextmanager
def function_logs() -> Iterator[io.StringIO]:
    """Everything logged or printed meanwhile, at levels stricter than Lambda's defaults.

    The functions' Powertools logger at DEBUG (the most the LogLevel parameter allows); every other
    logger (stripe-python, botocore, Powertools' own) at INFO, where Lambda's root logger passes
    WARNING and above. (At DEBUG, botocore and stripe-python log response bodies: the secret's among
    them. Nothing in the template turns that on; see docs/security.md.)
    """
    from payments.observability import logger

    captured = io.StringIO()
    powertools_handler = logger.registered_handler  # type: ignore[attr-defined]
    previous_stream = powertools_handler.setStream(captured)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    root = logging.getLogger()
    root_handler = logging.StreamHandler(captured)
    root_handler.setLevel(logging.INFO)
    previous_root_level = root.level
    root.addHandler(root_handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield captured
    finally:
        root.setLevel(previous_root_level)
        root.removeHandler(root_handler)
        logger.setLevel(previous_level)
        powertools_handler.setStream(previous_stream)


def _scan(table: Any) -> list[dict[str, Any]]:
    response = table.scan()
    items = response["Items"]
    while "LastEvaluatedKey" in response:
        response = table.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
        items += response["Items"]
    return items


@pytest.fixture(scope="module")
def run(cloud: LocalCloud, stripe: FakeStripe) -> Run:
    # Given payments that go through every function, the webhook and Stripe's client_secrets
    with function_logs() as captured:
        outcomes = [run_scenario(cloud, stripe, next(s for s in SCENARIOS if s.name == name)) for name in PATHS]
    assert all(outcome.ok for outcome in outcomes), [o.timeline for o in outcomes if not o.ok]

    # When we read what an operator can read
    execution_prefix = cloud.state_machine_arn.replace(":stateMachine:", ":execution:")
    histories = {o.order_id: cloud.history(f"{execution_prefix}:{o.order_id}") for o in outcomes}
    secrets = {"Stripe API key": stripe.api_key, "webhook signing secret": stripe.webhook_secret}
    for outcome in outcomes:
        for payment_intent in payment_intents_of(stripe, outcome.order_id):
            secrets[f"client_secret of {payment_intent['id']}"] = payment_intent["client_secret"]
    tables = {logical_id: _scan(cloud.table(logical_id)) for logical_id in ("PaymentsTable", "OrdersTable")}
    return Run(captured.getvalue(), histories, tables, secrets)


def _leaks(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value in text]


def _task_tokens(history: list[dict[str, Any]]) -> list[str]:
    tokens = []
    for event in history:
        parameters = json.loads(event.get("taskScheduledEventDetails", {}).get("parameters") or "{}")
        if "taskToken" in parameters.get("Payload", {}):
            tokens.append(parameters["Payload"]["taskToken"])
    return tokens


def test_the_paths_ran_and_their_logs_were_captured(run: Run) -> None:
    assert "PaymentIntent created" in run.logs and "Webhook handled" in run.logs and "Stock reserved" in run.logs
    assert "Authorisation settled" in run.logs and "out_of_stock" in run.logs
    assert sum(name.startswith("client_secret") for name in run.secrets) >= len(PATHS)


def test_no_secret_in_the_logs(run: Run) -> None:
    assert _leaks(run.logs, run.secrets) == []


def test_no_secret_in_any_execution_history_event(run: Run) -> None:
    # Every event whole: input, output, parameters, error and cause.
    for order_id, history in run.histories.items():
        assert _leaks(json.dumps(history, default=str), run.secrets) == [], order_id


def test_no_secret_in_the_tables(run: Run) -> None:
    for logical_id, items in run.tables.items():
        assert items, logical_id
        assert _leaks(json.dumps(items, default=str), run.secrets) == [], logical_id


def test_no_task_token_or_customer_email_in_the_logs(run: Run) -> None:
    for order_id, history in run.histories.items():
        tokens = _task_tokens(history)
        assert tokens, order_id  # the history carries them; a log must not
        assert _leaks(run.logs, {f"task token {n}": token for n, token in enumerate(tokens)}) == [], order_id
    email = order_for(SCENARIOS[0], "any")["customer"]["email"]
    assert email in json.dumps(run.histories, default=str)
    assert email not in run.logs


def test_functions_get_the_secret_by_arn_only(cloud: LocalCloud, stripe: FakeStripe) -> None:
    secrets = {"Stripe API key": stripe.api_key, "webhook signing secret": stripe.webhook_secret}
    environments = {spec.logical_id: spec.environment for spec in cloud.template.functions().values()}
    for logical_id, environment in environments.items():
        assert _leaks(json.dumps(environment), secrets) == [], logical_id
        assert environment["STRIPE_SECRET_ARN"].startswith("arn:aws:secretsmanager:"), logical_id
    secret_arn = environments["StripeWebhookFunction"]["STRIPE_SECRET_ARN"]
    stored = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    assert stored["api_key"] == stripe.api_key
