"""The orders bad webhook requests aim at (one waiting on its task token, one paid), and each request sent at them."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

from local_runtime.reliability.bad_webhooks import Request, Target, WebhookCase
from local_runtime.reliability.courier import Plan
from local_runtime.reliability.invariants import Verdict, judge, judge_authorisations
from local_runtime.reliability.schedules import PAYMENTS, order_input
from local_runtime.reliability.settings import PREVIOUS_SECRET
from local_runtime.reliability.stack import Stack


@dataclass
class CaseResult:
    name: str
    expected: int
    status: int | None
    changed: list[str]

    @property
    def ok(self) -> bool:
        return self.status == self.expected and not self.changed


def send(stack: Stack, request: Request) -> int | None:
    parsed = urllib.parse.urlsplit(stack.cloud.api_url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=30)
    try:
        connection.putrequest(request.method, request.path, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def snapshot(stack: Stack) -> dict[str, Any]:
    """What a webhook request could change: both tables, every execution and its history."""

    def scan(logical_id: str) -> list[str]:
        items = stack.cloud.table(logical_id).scan(ConsistentRead=True)["Items"]
        return sorted(json.dumps(item, sort_keys=True, default=str) for item in items)

    executions = {}
    kwargs: dict[str, Any] = {"stateMachineArn": stack.cloud.state_machine_arn, "maxResults": 1000}
    for execution in stack.sfn.list_executions(**kwargs)["executions"]:
        arn = execution["executionArn"]
        history = stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        executions[arn] = (execution["status"], len(history))
    return {"PaymentsTable": scan("PaymentsTable"), "OrdersTable": scan("OrdersTable"), "executions": executions}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{key} changed" for key in before if before[key] != after[key]]


@contextlib.contextmanager
def secret_rotation(stack: Stack) -> Iterator[None]:
    """The secret as an operator holds it while rolling the signing secret: the previous one too."""
    from aws_lambda_powertools.utilities import parameters

    client = boto3.client("secretsmanager")
    arn = stack.cloud.template.physical["StripeSecret"]
    original = client.get_secret_value(SecretId=arn)["SecretString"]
    rolled = {**json.loads(original), "previous_webhook_signing_secret": PREVIOUS_SECRET}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(rolled))
    parameters.clear_caches()
    try:
        yield
    finally:
        client.put_secret_value(SecretId=arn, SecretString=original)
        parameters.clear_caches()


def run_webhook_case(stack: Stack, target: Target, case: WebhookCase) -> CaseResult:
    with secret_rotation(stack) if case.rotation else contextlib.nullcontext():
        before = snapshot(stack)
        status = send(stack, case.build(target))
        time.sleep(0.05)  # a resumed execution moves on in a thread of its own
        after = snapshot(stack)
    return CaseResult(case.name, case.expected, status, _differences(before, after))


@dataclass
class WebhookTargets:
    target: Target
    waiting_arn: str
    finished_arn: str
    waiting_order: str
    finished_order: str


def prepare_targets(stack: Stack, prefix: str) -> WebhookTargets:
    """An order waiting on 3-D Secure with its token stored, and a paid, fulfilled one."""
    waiting_order, finished_order = f"{prefix}-waiting", f"{prefix}-finished"
    for order_id in (waiting_order, finished_order):
        stack.courier.plan(order_id, Plan("immediate"))
    finished_arn = stack.start(order_input(finished_order, PAYMENTS["card"]), finished_order)
    waiting_arn = stack.start(order_input(waiting_order, PAYMENTS["3ds_abandoned"]), waiting_order)
    if not stack.watcher.wait(finished_arn, 60):
        raise RuntimeError("the finished order did not finish")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pis = stack.courier.payment_intents_of(waiting_order)
        item = stack.item("PaymentsTable", {"paymentIntentId": pis[0]}) if pis else None
        if item and item.get("taskToken") and item.get("status") == "requires_action":
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("the waiting order never stored its task token")
    for order_id in (waiting_order, finished_order):
        stack.courier.drain(order_id, timeout=30)
    stripe = stack.stripe
    finished_pi = stack.payment_intents(finished_order)[0]
    finished_event = next(
        e
        for e in list(stripe.events)
        if e["type"] == "payment_intent.succeeded" and e["data"]["object"]["id"] == finished_pi["id"]
    )
    target = Target(
        app_id=stack.cloud.template.stack_name,
        waiting=stack.payment_intents(waiting_order)[0],
        finished=finished_pi,
        finished_event=json.loads(json.dumps(finished_event)),
    )
    return WebhookTargets(target, waiting_arn, finished_arn, waiting_order, finished_order)


def finish_targets(stack: Stack, targets: WebhookTargets) -> list[Verdict]:
    """After the bad requests, the waiting customer pays: the order must end paid and fulfilled."""
    try:
        stack.stripe.complete_3ds(targets.target.waiting["id"], succeed=True)
        cannot_pay = None
    except ValueError as refused:  # the PaymentIntent no longer waits for the customer: a problem, not a crash
        cannot_pay = f"the waiting customer could not pay after the bad requests: {refused}"
    finished = stack.watcher.wait(targets.waiting_arn, 60)
    stack.courier.drain(targets.waiting_order, timeout=30)
    verdicts = [
        judge(
            stack,
            "waited through the bad requests, then paid",
            targets.waiting_order,
            targets.waiting_arn,
            0.0,
            finished=finished,
        ),
        judge(stack, "paid before the bad requests", targets.finished_order, targets.finished_arn, 0.0, finished=True),
    ]
    for verdict in verdicts:
        judge_authorisations(stack, verdict)
    if cannot_pay is not None:
        verdicts[0].lost.append(cannot_pay)
    if verdicts[0].final_state != "PaymentSucceeded":
        verdicts[0].lost.append(f"expected PaymentSucceeded after the customer paid, got {verdicts[0].final_state}")
    return verdicts
