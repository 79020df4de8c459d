"""Payment scenarios run end to end on the local stack, and the invariants checked after each."""

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.credentials import Credentials
from stripe import StripeClient

from local_runtime.engine import FAKE_AWS_ENV, LocalCloud
from local_runtime.fake_stripe import Browser, FakeStripe
from web.merchant_api import MerchantApi, MerchantApiError

STRIPE_EVENT_SOURCE = "aws.partner/stripe.com/ed_test_local"
# The local stack's parameters: short waits so that every path, the timeout included, runs in seconds; both ways
# in for Stripe's events (the webhook, and the EventBridge partner event source), as a deployment may have them.
LOCAL_PARAMETERS = {
    "StripeEventSourceName": STRIPE_EVENT_SOURCE,
    "PaymentTimeoutSeconds": "3",
    "MaxPaymentAttempts": "2",
    "RetryDelaySeconds": "0",
    "ParkIntervalSeconds": "1",
    "MaxParkRounds": "3",
    "ReconcileAfterMinutes": "0",
    "ReceiptSender": "receipts@shop.example",
    # The Stripe request budget's code runs (each request takes its token; the bench counts those writes) but never
    # holds a request back: the local Stripe has no rate limit unless a test asks for one (tests/e2e/test_peak_load.py).
    "StripeRequestsPerSecond": "1000",
}
# Every ASL Retry's wait scaled down (a step's five quick retries take about a second, not a minute), and a
# queue's failed message visible again after a second, not the template's minutes: LocalCloud(**LOCAL_TIMING).
LOCAL_TIMING = {"retry_seconds_scale": 0.1, "queue_visibility_seconds": 1}
DEMO_CUSTOMER = "cus_LocalDemo01"
STOCK = {"MUG-BLUE": 1_000_000, "TEA-EARL": 1_000_000, "LAST-ONE": 0}


@dataclass(frozen=True)
class Pay:
    """What the customer does on the checkout page once the status API says they can act: pay with a test card
    (answering 3-D Secure if it asks), or, with no card, answer the 3-D Secure challenge waiting for them."""

    card: str | None = None
    three_d_secure: str | None = "complete"  # "complete" | "fail"
    attempt: int = 1  # acts once the workflow waits on this attempt: a person, not a race with the webhook


@dataclass(frozen=True)
class Scenario:
    name: str
    payment_method: str | None  # confirmed server-side; None: the customer pays on the checkout page
    expected_state: str  # the state the execution ends in
    expected_order_status: str
    description: str
    items: tuple[tuple[str, int], ...] = (("MUG-BLUE", 2), ("TEA-EARL", 1))
    customer: tuple[Pay, ...] = ()  # the customer's steps, in order, each when the customer can act
    saved_card: str | None = None  # a card saved to the Customer, charged off-session (payment_method unused)
    delivery: dict[str, Any] = field(default_factory=dict)  # FakeStripe.set_delivery switches
    drop_webhooks: bool = False
    early_webhook: bool = False  # deliver the outcome before the task token is stored
    stripe_down: bool = False  # Stripe answers 500 to every read of the order's PaymentIntent until the execution ends
    start_again: bool = False  # then the same order is started again under another name
    capture_late_seconds: int = 0  # Stripe's clock moves this far just before the capture (CaptureMethod manual)
    when_automatic: tuple[str, str] | None = None  # (state, order status) under CaptureMethod automatic, if other
    manual_only: bool = False  # it needs an authorisation: nothing to run under CaptureMethod automatic

    def expected(self, capture_method: str) -> tuple[str, str]:
        if capture_method == "automatic" and self.when_automatic:
            return self.when_automatic
        return self.expected_state, self.expected_order_status


CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_SECURE_CARD = "4000002500003155"
SCENARIOS = (
    Scenario("succeeded", "pm_card_visa", "PaymentSucceeded", "fulfilled", "card charged, order fulfilled"),
    Scenario("on-session card", None, "PaymentSucceeded", "fulfilled",
             "the customer pays on the checkout page with Stripe.js", customer=(Pay(CARD),)),
    Scenario("on-session 3-D Secure", None, "PaymentSucceeded", "fulfilled",
             "the customer pays with a card that asks for 3-D Secure, and passes it",
             customer=(Pay(THREE_D_SECURE_CARD, "complete"),)),
    Scenario("on-session decline, then another card", None, "PaymentSucceeded", "fulfilled",
             "the customer's card is declined on the checkout page; they pay with another one",
             customer=(Pay(DECLINED_CARD), Pay(CARD, attempt=2))),
    Scenario("declined, then another card", "pm_card_chargeDeclined", "PaymentSucceeded", "fulfilled",
             "declined; the customer pays again with another card on the same PaymentIntent",
             customer=(Pay(CARD, attempt=2),)),
    Scenario("declined twice", "pm_card_chargeDeclined", "PaymentFailed", "failed",
             "declined, and the customer's other card too: no attempt left", customer=(Pay(DECLINED_CARD, attempt=2),)),
    Scenario("3ds success", "pm_card_authenticationRequired", "PaymentSucceeded", "fulfilled",
             "requires_action; the customer passes 3-D Secure on the checkout page", customer=(Pay(),)),
    Scenario("3ds failure, then another card", "pm_card_authenticationRequired", "PaymentSucceeded", "fulfilled",
             "the customer fails 3-D Secure, then pays with another card",
             customer=(Pay(three_d_secure="fail"), Pay(CARD, attempt=2))),
    Scenario("saved card, insufficient funds", None, "PaymentFailed", "failed",
             "a saved card declined off-session is retried off-session, and declined again",
             saved_card="4000000000009995"),
    Scenario("saved card declined, then another card", None, "PaymentSucceeded", "fulfilled",
             "a saved card declined off-session for good: the customer comes back and pays with another card",
             saved_card=DECLINED_CARD, customer=(Pay(CARD, attempt=2),)),
    Scenario("saved card needs the customer", None, "PaymentSucceeded", "fulfilled",
             "off-session the bank asks for authentication: the customer comes back and passes 3-D Secure",
             saved_card="4000002760003184", customer=(Pay("4000002760003184", "complete", attempt=2),)),
    Scenario("async success", "pm_success_de", "PaymentSucceeded", "fulfilled", "SEPA debit: processing, then paid"),
    Scenario("async failure", "pm_failed_de", "PaymentTimedOut", "timed_out",
             "SEPA debit fails; the customer does not pay again"),
    Scenario("timeout with reconcile", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "every webhook lost: the timeout asks Stripe, which says paid", drop_webhooks=True),
    Scenario("timeout unpaid", None, "PaymentTimedOut", "timed_out",
             "nobody pays: the timeout cancels the PaymentIntent"),
    Scenario("duplicate webhooks", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "every event delivered three times", delivery={"duplicate": 2}),
    Scenario("early webhook", "pm_card_visa", "PaymentSucceeded", "fulfilled",
             "the outcome arrives before the task token is stored", early_webhook=True),
    Scenario("saved card authorised, then captured", None, "PaymentSucceeded", "fulfilled",
             "off-session, a saved card is authorised (a merchant-initiated hold), the stock reserved, then the "
             "payment captured", saved_card=CARD),
    Scenario("out of stock", "pm_card_visa", "OutOfStock", "out_of_stock",
             "the last one was sold: the authorisation is released, nothing charged, nothing refunded "
             "(CaptureMethod automatic: charged, then refunded)",
             items=(("LAST-ONE", 1),), when_automatic=("Refunded", "refunded")),
    Scenario("lost webhooks and Stripe down", "pm_card_visa", "NeedsAttention", "fulfilled",
             "paid, every webhook lost, Stripe down past the parking: the reconciler completes the order",
             drop_webhooks=True, stripe_down=True),
    Scenario("duplicate start", "pm_card_visa", "DuplicateOrder", "fulfilled",
             "the paid order started again under another name: nothing charged or changed", start_again=True),
    Scenario("capture deadline reached", "pm_card_visa", "AuthorizationExpired", "authorization_expired",
             "authorised and the stock reserved, but the capture comes a week late (Stripe's clock moves on): the "
             "authorisation lapsed, the stock is put back, nothing charged", capture_late_seconds=7 * 24 * 3600 + 60,
             manual_only=True),
)  # fmt: skip


def order_input(
    order_id: str,
    payment_method: str | None,
    items: tuple[tuple[str, int], ...],
    customer_id: str = DEMO_CUSTOMER,
) -> dict[str, Any]:
    """A start input: 10.00 a unit, in euros for a SEPA debit (`pm_*_de`), else dollars."""
    unit = 1000
    order: dict[str, Any] = {
        "orderId": order_id,
        "amount": unit * sum(quantity for _, quantity in items),
        "currency": "eur" if payment_method and payment_method.endswith("_de") else "usd",
        "customer": {"id": customer_id, "email": "ada@shop.example"},
        "items": [{"sku": sku, "quantity": quantity, "unitAmount": unit} for sku, quantity in items],
    }
    if payment_method:
        order["paymentMethod"] = payment_method
    return order


def order_for(scenario: Scenario, order_id: str, saved_payment_method: str | None = None) -> dict[str, Any]:
    if saved_payment_method is None:
        return order_input(order_id, scenario.payment_method, scenario.items)
    return {**order_input(order_id, saved_payment_method, scenario.items), "offSession": True}


@dataclass
class Outcome:
    scenario: Scenario
    destination: str
    capture_method: str
    order_id: str
    execution_arn: str
    execution_status: str
    final_state: str
    order_status: str
    seconds: float
    timeline: list[str]
    problems: list[str]

    @property
    def expected(self) -> tuple[str, str]:
        return self.scenario.expected(self.capture_method)

    @property
    def ok(self) -> bool:
        return (self.final_state, self.order_status) == self.expected and not self.problems


# How Stripe delivers events (docs.stripe.com/event-destinations): by webhook or to Amazon EventBridge, each
# as snapshot events or as thin ones; the core scenarios run through every one.
DESTINATIONS = ("webhook", "webhook thin", "eventbridge", "eventbridge thin")
CORE_SCENARIOS = (
    "succeeded", "declined, then another card", "3ds success", "async success", "async failure",
    "timeout with reconcile", "duplicate webhooks", "early webhook",
)  # fmt: skip


def use_destination(cloud: LocalCloud, stripe: FakeStripe, destination: str) -> None:
    """Stripe's one event destination for what follows (the stack takes both ways in)."""
    kind, _, payload = destination.partition(" ")
    stripe.remove_destinations()
    if kind == "webhook":
        stripe.add_webhook_endpoint(cloud.url_of("/webhooks/stripe"), payload=payload or "snapshot")
    else:
        stripe.add_eventbridge_destination(
            cloud.put_partner_event, payload=payload or "snapshot", source=STRIPE_EVENT_SOURCE
        )


def seed_stack(
    cloud: LocalCloud, stripe: FakeStripe, stock: dict[str, int] = STOCK, customers: tuple[str, ...] = (DEMO_CUSTOMER,)
) -> None:
    """What a shop has before its first payment: stock, and its Customers at Stripe (Stripe refuses a
    PaymentIntent for a Customer it does not know)."""
    inventory = cloud.table("InventoryTable")
    for sku, available in stock.items():
        inventory.put_item(Item={"sku": sku, "available": available})
    for customer in customers:
        stripe.add_customer(customer)


def run_scenario(
    cloud: LocalCloud, stripe: FakeStripe, scenario: Scenario, order_id: str | None = None, destination: str = "webhook"
) -> Outcome:
    order_id = order_id or f"{re.sub(r'[^A-Za-z0-9]+', '-', scenario.name)}-{uuid.uuid4().hex[:8]}"
    use_destination(cloud, stripe, destination)
    drop: Callable[[dict[str, Any]], bool] | None = None
    if scenario.drop_webhooks:

        def drop(event: dict[str, Any]) -> bool:
            return _order_of(stripe, event) == order_id

    stripe.set_delivery(**scenario.delivery, drop=drop, hold=scenario.early_webhook)
    if scenario.early_webhook:
        cloud.before_invoke = _deliver_before_token(cloud, stripe, order_id)
    if scenario.capture_late_seconds:
        cloud.before_invoke = _late_capture(stripe, order_id, scenario.capture_late_seconds)
    outage = stripe_down_for(stripe, order_id) if scenario.stripe_down else None
    started_wall = time.time()
    started = time.monotonic()
    notes: list[tuple[float, str]] = []
    try:
        saved = save_card(stripe, scenario.saved_card) if scenario.saved_card else None
        execution_arn = cloud.start_payment(order_for(scenario, order_id, saved))
        execution = _drive(cloud, stripe, scenario, order_id, execution_arn, notes)
        stripe.wait_for_deliveries(timeout=10)
        history = cloud.history(execution_arn)
        if outage is not None:
            outage.times = 0
            notes.append((time.time(), "stripe   back"))
            notes.append((time.time(), f"reconcile {_execution_ended(cloud, execution)}"))
        if scenario.start_again:
            execution_arn = cloud.start_payment(order_for(scenario, order_id, saved), name=f"{order_id}-again")
            execution = cloud.wait_for(execution_arn, timeout=30)
            history = history + cloud.history(execution_arn)
    finally:
        stripe.set_delivery()
        cloud.before_invoke = None
        if outage is not None:
            outage.times = 0
    seconds = time.monotonic() - started
    order = cloud.table("OrdersTable").get_item(Key={"orderId": order_id}).get("Item") or {}
    return Outcome(
        scenario=scenario,
        destination=destination,
        capture_method=capture_method_of(cloud),
        order_id=order_id,
        execution_arn=execution_arn,
        execution_status=execution["status"],
        final_state=final_state(history),
        order_status=str(order.get("status", "missing")),
        seconds=seconds,
        timeline=timeline(history, stripe, order_id, started_wall, notes),
        problems=check_invariants(cloud, stripe, order_id),
    )


def _drive(
    cloud: LocalCloud, stripe: FakeStripe, scenario: Scenario, order_id: str, arn: str, notes: list[tuple[float, str]]
) -> dict[str, Any]:
    """Wait for the execution, acting as the customer on the checkout page where the scenario has one: the
    status API (as the merchant's backend reads it) says when they can act, Stripe.js's calls do the rest."""
    steps = list(scenario.customer)
    merchant = merchant_api(cloud)
    browser = Browser(stripe.url, stripe.publishable_key)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if steps and (client_secret := _customer_can_act(merchant, order_id, steps[0])):
            step = steps.pop(0)
            if step.card is None:
                result = browser.handle_next_action(client_secret, three_d_secure=step.three_d_secure or "complete")
                done = f"answers 3-D Secure: {step.three_d_secure}"
            else:
                result = browser.pay(client_secret, step.card, three_d_secure=step.three_d_secure)
                done = f"pays with the card ending {step.card[-4:]}"
            outcome = result.status or (result.error or {}).get("decline_code") or (result.error or {}).get("code")
            notes.append((time.time(), f"customer {done} -> {outcome}"))
        try:
            return cloud.wait_for(arn, timeout=0.05)
        except TimeoutError:
            continue
    return cloud.wait_for(arn, timeout=0.1)


def merchant_api(cloud: LocalCloud) -> MerchantApi:
    """The merchant's backend's client for the local stack's merchant API (signed with the local credentials)."""
    credentials = Credentials(FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"], FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    return MerchantApi(cloud.api_url, region=FAKE_AWS_ENV["AWS_REGION"], credentials=credentials)


def _customer_can_act(merchant: MerchantApi, order_id: str, step: Pay) -> str | None:
    """The client_secret, when the PaymentIntent waits for what this step does (a card, or a 3-D Secure answer)."""
    try:
        status = merchant.payment(order_id)
    except MerchantApiError:
        return None  # not accepted yet
    payment = status.get("payment") or {}
    waiting_for = "requires_action" if step.card is None else "requires_payment_method"
    if status.get("attempt") != step.attempt or payment.get("status") != waiting_for:
        return None
    return payment.get("clientSecret")


def save_card(stripe: FakeStripe, card: str, customer: str = DEMO_CUSTOMER) -> str:
    """A card the customer saved earlier: a PaymentMethod attached to their Customer (as the merchant's server
    does after a SetupIntent or a payment with setup_future_usage)."""
    client = StripeClient(stripe.api_key, base_addresses={"api": stripe.url})
    number, year = card, time.gmtime().tm_year + 2
    payment_method = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": year, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(payment_method.id, {"customer": customer})
    return payment_method.id


def stripe_down_for(stripe: FakeStripe, order_id: str) -> Any:
    """Every read of the order's PaymentIntents answers 500 (with Stripe-Should-Retry: false, so stripe-python
    does not retry it itself) until the returned fault's `times` is set to 0."""
    return stripe.fail_next(
        "GET", "/v1/payment_intents/", status=500, times=1_000_000, should_retry=False,
        match=lambda path, body: any(path.endswith(pi["id"]) for pi in payment_intents_of(stripe, order_id)),
    )  # fmt: skip


def execution_ended_event(execution: dict[str, Any]) -> dict[str, Any]:
    """The event EventBridge sends when an execution ends; `execution` as DescribeExecution returns it."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "time": execution["stopDate"].isoformat(), "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"], "status": execution["status"], "input": execution["input"],
        },
    }  # fmt: skip


def _execution_ended(cloud: LocalCloud, execution: dict[str, Any]) -> str:
    """Hand the reconciler the event EventBridge sends when an execution ends; returns what it did."""
    result, error = cloud.invoke_function("ReconcilePaymentsFunction", execution_ended_event(execution))
    if error is not None:
        return f"failed: {error['errorType']}: {error['errorMessage']}"
    return "after the execution ended: " + ", ".join(f"{k}={v}" for k, v in result.items() if v)


def _deliver_before_token(cloud: LocalCloud, stripe: FakeStripe, order_id: str) -> Callable[[str, Any], None]:
    def before_invoke(logical_id: str, event: Any) -> None:
        if logical_id == "RegisterTaskTokenFunction" and event.get("orderId") == order_id:
            stripe.release_held()
            stripe.wait_for_deliveries(timeout=10)
            cloud.wait_for_event_queues(timeout=10)

    return before_invoke


def _late_capture(stripe: FakeStripe, order_id: str, seconds: int) -> Callable[[str, Any], None]:
    """Stripe's clock moves `seconds` on just before the order's capture (as after a week-long outage): an
    authorisation whose capture_before it passes lapses at Stripe (the fake expires it then)."""

    moved: list[bool] = []

    def before_invoke(logical_id: str, event: Any) -> None:
        if logical_id != "SettleAuthorizationFunction" or event.get("action") != "capture" or moved:
            return
        if event.get("paymentIntentId") in {pi["id"] for pi in payment_intents_of(stripe, order_id)}:
            moved.append(True)
            stripe.clock.advance(seconds)  # what lapses in that time lapses now (the fake expires it)
            stripe.clock.advance(-seconds)  # and back: other orders share this Stripe

    return before_invoke


def capture_method_of(cloud: LocalCloud) -> str:
    return cloud.template.parameters["CaptureMethod"]


def _order_of(stripe: FakeStripe, event: dict[str, Any]) -> str | None:
    """The order a Stripe event is about: its snapshot's metadata, or a thin event's related PaymentIntent's."""
    obj = (event.get("data") or {}).get("object") or {}
    related = event.get("related_object") or {}
    if related.get("type") == "payment_intent":
        obj = stripe.payment_intents.get(related.get("id"), {})
    return (obj.get("metadata") or {}).get("order_id")


def payment_intents_of(stripe: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    return [pi for pi in list(stripe.payment_intents.values()) if pi.get("metadata", {}).get("order_id") == order_id]


def final_state(history: list[dict[str, Any]]) -> str:
    for event in reversed(history):
        if event["type"] in ("FailStateEntered", "SucceedStateEntered"):
            return str(event["stateEnteredEventDetails"]["name"])
    return "(none)"


def timeline(
    history: list[dict[str, Any]], stripe: FakeStripe, order_id: str, started: float,
    notes: list[tuple[float, str]] = (),  # type: ignore[assignment]
) -> list[str]:  # fmt: skip
    """States entered, Stripe calls and webhooks (and the scenario's own notes), in time order, from the start."""
    entries: list[tuple[float, str]] = list(notes)
    for event in history:
        if event["type"].endswith("StateEntered"):
            entries.append((event["timestamp"].timestamp(), f"state    {event['stateEnteredEventDetails']['name']}"))
        elif event["type"] == "ExecutionFailed":
            details = event["executionFailedEventDetails"]
            entries.append(
                (event["timestamp"].timestamp(), f"end      FAILED {details.get('error')}: {details.get('cause')}")
            )
        elif event["type"] == "ExecutionSucceeded":
            entries.append((event["timestamp"].timestamp(), "end      SUCCEEDED"))
    ids = {pi["id"] for pi in payment_intents_of(stripe, order_id)}
    for request in list(stripe.requests):
        mine = any(pi_id in request.path for pi_id in ids) or (
            request.idempotency_key is not None and request.idempotency_key.startswith(f"{order_id}:")
        )
        if mine:
            replay = " (idempotent replay)" if request.replayed else ""
            who = "browser " if request.publishable else "stripe  "  # Stripe.js with the publishable key
            entries.append((request.at, f"{who} {request.method} {request.path} -> {request.status}{replay}"))
    every_event = [*stripe.events, *stripe.thin_events]
    events = {event["id"]: event for event in every_event if _order_of(stripe, event) == order_id}
    for delivery in list(stripe.deliveries):
        if delivery.event_id in events:
            way = "webhook " if delivery.destination == "webhook_endpoint" else "bus     "  # EventBridge
            answer = delivery.error or delivery.status or "put"
            entries.append((delivery.at, f"{way} {delivery.type} #{delivery.attempt} -> {answer}"))
    entries.sort(key=lambda entry: entry[0])
    return [f"{max(at - started, 0.0):7.3f}s  {text}" for at, text in entries]


def check_invariants(cloud: LocalCloud, stripe: FakeStripe, order_id: str) -> list[str]:
    """What must hold for any order, whatever the path. Returns the broken ones."""
    problems = []
    payment_intents = payment_intents_of(stripe, order_id)
    succeeded = [pi for pi in payment_intents if pi["status"] == "succeeded"]
    attempts = [pi["metadata"].get("attempt") for pi in payment_intents]
    if len(attempts) != len(set(attempts)):
        problems.append(f"more than one PaymentIntent for one attempt: {attempts}")
    if len(succeeded) > 1:
        problems.append(f"charged {len(succeeded)} times")
    order = cloud.table("OrdersTable").get_item(Key={"orderId": order_id}).get("Item") or {}
    status = order.get("status")
    refunded = [r for r in stripe.refunds.values() if r.get("payment_intent") in {pi["id"] for pi in succeeded}]
    if succeeded and status not in ("fulfilled", "refunded"):
        problems.append(f"paid but the order is {status}")
    if status == "fulfilled" and not succeeded:
        problems.append("fulfilled without a succeeded PaymentIntent")
    if status == "refunded" and not refunded:
        problems.append("order says refunded but Stripe has no refund")
    if status == "fulfilled" and refunded:
        problems.append("fulfilled and refunded")
    history = [entry["status"] for entry in order.get("history", [])]
    if history.count("fulfilled") > 1:
        problems.append("fulfilled twice")
    authorised = authorised_payment_intents(list(stripe.events))
    for found in authorisation_problems(order, payment_intents, authorised).values():
        problems += found
    return problems


AUTHORISATION_INVARIANTS = (
    "captured_unreserved", "out_of_stock_charged", "held_authorisations", "stranded_reservations",
)  # fmt: skip


def authorised_payment_intents(events: list[dict[str, Any]]) -> set[str]:
    """The PaymentIntents Stripe authorised (held to capture later) in these events (`FakeStripe.events`): each one's
    payment_intent.amount_capturable_updated."""
    return {
        event["data"]["object"]["id"] for event in events
        if event["type"] == "payment_intent.amount_capturable_updated"
    }  # fmt: skip


def authorisation_problems(
    order: dict[str, Any], payment_intents: list[dict[str, Any]], authorised: set[str]
) -> dict[str, list[str]]:
    """Authorise, reserve, capture (docs/capture.md): nothing captured before its stock was reserved, no order that
    says out of stock or lapsed charged, no hold or reservation left behind. `authorised`: the PaymentIntents Stripe
    authorised (`authorised_payment_intents`). Under CaptureMethod automatic nothing is authorised or reserved: they
    hold at once. The broken ones, by invariant (`AUTHORISATION_INVARIANTS`); the last two hold only once nothing
    will capture or release any more (the execution, and the reconciler after it, are done)."""
    status = order.get("status")
    succeeded = [pi for pi in payment_intents if pi["status"] == "succeeded"]
    reserved = {entry.get("paymentIntentId") for entry in order.get("history", []) if entry["status"] == "reserved"}
    problems: dict[str, list[str]] = {name: [] for name in AUTHORISATION_INVARIANTS}
    for pi in succeeded:
        if pi["id"] in authorised and pi["id"] not in reserved:
            problems["captured_unreserved"].append(f"captured {pi['id']} without reserving the stock")
    if status in ("out_of_stock", "authorization_expired") and succeeded:
        problems["out_of_stock_charged"].append(f"order {status} but charged")
    held = [pi["id"] for pi in payment_intents if pi["status"] == "requires_capture"]
    if held:
        problems["held_authorisations"].append(f"authorisation still held: {held}")
    if order.get("reservedPaymentIntentId") and "fulfilledAt" not in order:
        problems["stranded_reservations"].append("stock still reserved for an order that was not fulfilled")
    return problems


def summary_table(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "events by", "expected", "actual", "order", "seconds", "result")]
    for outcome in outcomes:
        rows.append((
            outcome.scenario.name,
            outcome.destination,
            outcome.expected[0],
            outcome.final_state,
            outcome.order_status,
            f"{outcome.seconds:.2f}",
            "ok" if outcome.ok else "MISMATCH",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
