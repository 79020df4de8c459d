"""Stripe's deliveries: each order's events, captured as Stripe emits them, delivered per its plan to the order's event
destination: the webhook over HTTP (signed), or the partner event bus (a PutEvents entry, which the bus's rule puts on
the queue the StripeEvents function reads), snapshot events or their thin twins."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_runtime.fake_stripe import put_events_entry, sign_payload
from local_runtime.reliability.settings import SIGNING_SECRET
from local_runtime.scenarios import STRIPE_EVENT_SOURCE

if TYPE_CHECKING:
    from local_runtime.reliability.stack import Stack
    from local_runtime.template import Template


# The event types the README tells operators to subscribe the endpoint to: Stripe sends no others.
SUBSCRIBED = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
    }
)
# The events after which Stripe sends nothing more of the PaymentIntent until we act (capture, cancel, a new attempt).
GROUP_CLOSERS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.amount_capturable_updated",
})  # fmt: skip


@dataclass
class Plan:
    """How Stripe delivers one order's events, and where: `destination` is one of `scenarios.DESTINATIONS` (the
    webhook or the partner event bus, snapshot or thin events). The modes (`Courier.capture` and
    `token_about_to_be_stored`), the same for every destination:

    - stripe: FakeStripe's own delivery (every event type, one at a time, its own retries; see `destinations`)
    - immediate: each event as soon as Stripe emits it
    - before_token: held until CreatePaymentIntent has answered (or, if it never did, until the execution is about
      to store its task token), then delivered before the execution goes on to wait (by the bus: put, and read and
      handled by the StripeEvents function): handled before the token is stored, and before the wait's timeout runs
    - racing_token: held until the token is about to be stored, then delivered at the same moment
    - after_token: held until the task token is stored
    - delayed: each event (and copy) delayed at random: out of order, some after the timeout
    - reversed: each PaymentIntent's events held until its last, then delivered newest first
    - lost: every event dropped: only the timeout's reconciliation can finish the order
    - lossy: each event dropped with some probability
    """

    mode: str
    duplicates: int = 0
    drop_rate: float = 0.0
    max_delay: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    destination: str = "webhook"
    released: set[str] = field(default_factory=set)  # PaymentIntents whose held events went out
    held: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def by_bus(self) -> bool:
        return self.destination.startswith("eventbridge")

    @property
    def thin(self) -> bool:
        return self.destination.endswith(" thin")


@dataclass
class DeliveryRecord:
    """One delivery: a POST to the webhook (its HTTP status, or the connection error), or a PutEvents entry (status
    None; error, what the put raised). `attempt` 0: dropped."""

    order_id: str
    event_id: str
    type: str
    attempt: int
    status: int | None
    error: str | None
    by_bus: bool = False


@dataclass
class BusMessage:
    """One event put on the partner bus (one PutEvents entry, the queue's one message), and each time the StripeEvents
    function read it: "handled", "failed" (reported in batchItemFailures: it comes again) or "crashed: <error>" (the
    invocation failed: the whole batch comes again)."""

    order_id: str
    event_id: str
    type: str
    reads: list[str] = field(default_factory=list)

    @property
    def handled(self) -> bool:
        return "handled" in self.reads


def routed_types(template: Template) -> frozenset[str]:
    """The event types the partner bus's rule (template.yaml's StripeEventsRule) puts on the StripeEvents queue."""
    pattern = template.resources["StripeEventsRule"]["Properties"]["EventPattern"]
    return frozenset(kind for branch in pattern.get("$or", [pattern]) for kind in branch.get("detail-type", []))


def _bus_ids(records: list[dict[str, Any]]) -> list[str]:
    """EventBridge's ids of the events in an SQS batch (each body is EventBridge's envelope)."""
    ids = []
    for record in records:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            ids.append(str(json.loads(record.get("body") or "")["id"]))
    return ids


def kind_of(event: dict[str, Any]) -> str:
    """The snapshot event type an event is, or mirrors (a thin event's type is `v1.` and the snapshot's)."""
    return str(event.get("type", "")).removeprefix("v1.")


class Courier:
    """Delivers Stripe's events per an order's plan: to the webhook over HTTP, signed as Stripe signs them, or onto
    the partner event bus, as Stripe's EventBridge destination puts them; snapshot events or thin ones.

    Like Stripe: several deliveries in flight at once, a non-2xx answer (or a put that raised) retried with
    backoff, and a delivery's signature made when it is sent. A message on the bus is followed until the
    StripeEvents function has handled it (`drain` waits for that too).
    """

    def __init__(
        self,
        stack: Stack,
        url: str,
        *,
        workers: int = 16,
        retry_backoff: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 3.0),
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._host, self._port, self._path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        self.retry_backoff = retry_backoff
        self._stack = stack
        self._routed = routed_types(stack.cloud.template)
        self._plans: dict[str, Plan] = {}
        self._pi_orders: dict[str, str] = {}
        self._order_pis: dict[str, list[str]] = defaultdict(list)
        self._delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._records: dict[str, list[DeliveryRecord]] = defaultdict(list)
        self._event_orders: dict[str, str] = {}  # event id (snapshot or thin) -> order id
        self._twins: dict[str, tuple[str, str | None, str | None]] = {}  # object id -> (type, order, PaymentIntent)
        self._bus: dict[str, BusMessage] = {}  # EventBridge's id of each message -> the message
        self._bus_of: dict[str, list[str]] = defaultdict(list)  # order id -> EventBridge ids
        self._reading: Counter[str] = Counter()  # EventBridge id -> reads of the message under way
        self._pending: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="courier")
        self._timers: list[threading.Timer] = []
        self._stopped = False

    # -- what the stack asks -------------------------------------------------------------------

    def order_of(self, pi_id: str) -> str | None:
        return self._pi_orders.get(pi_id)

    def payment_intents_of(self, order_id: str) -> list[str]:
        with self._lock:
            return list(self._order_pis.get(order_id, ()))

    def plan(self, order_id: str, plan: Plan) -> None:
        with self._lock:
            self._plans[order_id] = plan

    def records_of(self, order_id: str) -> list[DeliveryRecord]:
        with self._lock:
            return list(self._records.get(order_id, ()))

    def destination_of(self, event_id: str) -> str:
        """The event destination of the order an event (snapshot or thin) is about: "webhook" for an order without
        a plan, as Stripe's one endpoint."""
        with self._lock:
            plan = self._plans.get(self._event_orders.get(event_id, ""))
        return plan.destination if plan is not None else "webhook"

    def order_of_event(self, event_id: str) -> str:
        with self._lock:
            return self._event_orders.get(event_id, "")

    def bus_messages_of(self, order_id: str) -> list[BusMessage]:
        with self._lock:
            return [
                BusMessage(m.order_id, m.event_id, m.type, list(m.reads))
                for m in (self._bus[bus_id] for bus_id in self._bus_of.get(order_id, ()))
            ]

    # -- FakeStripe's drop predicate -------------------------------------------------------------

    def capture(self, event: dict[str, Any]) -> bool:
        """Called as Stripe emits each event, for each payload (the snapshot event, then its thin twin). True: the
        courier owns it (FakeStripe won't deliver it). False: FakeStripe delivers it (plan "stripe", or no plan),
        to the destinations of `destinations`, each of which passes on only its orders' events."""
        thin = event.get("object") == "v2.core.event"
        with self._lock:
            order_id, pi_id = self._thin_twin(event) if thin else self._learn(event)
            plan = self._plans.get(order_id or "")
            if plan is None or plan.mode == "stripe":
                return False
            if plan.thin != thin:
                return True  # the destination takes the other payload
            if kind_of(event) not in SUBSCRIBED:
                return True
            if plan.mode == "lost" or plan.rng.random() < plan.drop_rate:
                self._record(DeliveryRecord(order_id, event["id"], event["type"], 0, None, "dropped", plan.by_bus))
                return True
            if plan.mode in ("before_token", "racing_token", "after_token") and pi_id not in plan.released:
                plan.held[pi_id].append(event)
                return True
            if plan.mode == "reversed":
                plan.held[pi_id].append(event)
                if kind_of(event) in GROUP_CLOSERS:
                    group = plan.held.pop(pi_id)
                    for index, parked in enumerate(reversed(group)):
                        self._send(order_id, parked, delay=0.05 * index, plan=plan)
                return True
            delay = plan.rng.uniform(0, plan.max_delay) if plan.mode == "delayed" else 0.0
            self._send(order_id, event, delay=delay, plan=plan)
            return True

    def _learn(self, event: dict[str, Any]) -> tuple[str | None, str | None]:
        """A snapshot event: its order (the metadata, or its PaymentIntent's order) and PaymentIntent, remembered
        for the thin twin Stripe admits next. The caller holds self._lock."""
        obj = (event.get("data") or {}).get("object") or {}
        pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        order_id = (obj.get("metadata") or {}).get("order_id") or self._pi_orders.get(pi_id or "")
        if order_id and pi_id and pi_id not in self._pi_orders:
            self._pi_orders[pi_id] = order_id
            self._order_pis[order_id].append(pi_id)
        if order_id:
            self._event_orders[event["id"]] = order_id
        self._twins[str(obj.get("id"))] = (str(event.get("type")), order_id, pi_id)
        return order_id, pi_id

    def _thin_twin(self, event: dict[str, Any]) -> tuple[str | None, str | None]:
        """A thin event: the order and PaymentIntent of the snapshot event it mirrors (FakeStripe admits the two one
        after the other, under its lock). The caller holds self._lock."""
        related = event.get("related_object") or {}
        kind, order_id, pi_id = self._twins.pop(str(related.get("id")), ("", None, None))
        if kind != kind_of(event):
            return None, None
        if order_id:
            self._event_orders[event["id"]] = order_id
        return order_id, pi_id

    # -- the task-token races --------------------------------------------------------------------

    def payment_intent_created(self, order_id: str, pi_id: str) -> None:
        """CreatePaymentIntent answered with this PaymentIntent, and the execution is about to go on to wait for it:
        for "before_token", deliver what the plan held, and see it handled, now."""
        with self._lock:
            plan = self._plans.get(order_id)
        if plan is not None and plan.mode == "before_token":
            self.token_about_to_be_stored(order_id, pi_id)

    def token_about_to_be_stored(self, order_id: str, pi_id: str) -> None:
        """RegisterTaskToken is about to run for this PaymentIntent: release what the plan held for it."""
        with self._lock:
            plan = self._plans.get(order_id)
            if plan is None or plan.mode not in ("before_token", "racing_token", "after_token"):
                return
            plan.released.add(pi_id)
            held = plan.held.pop(pi_id, [])
        if plan.mode == "before_token":
            # Synchronously, before the token is stored; from the bus, once the StripeEvents function has read each.
            put = [self._deliver(order_id, event, attempt=1) for event in held]
            self._wait_read([bus_id for bus_id in put if bus_id], timeout=10)
            for event in held:
                for _ in range(plan.duplicates):
                    self._send(order_id, event, delay=plan.rng.uniform(0, 0.5), plan=None)
        elif plan.mode == "racing_token":
            for event in held:
                self._send(order_id, event, delay=0.0, plan=plan)
        else:
            with self._lock:
                self._pending[order_id] += 1
            threading.Thread(
                target=self._after_token, args=(order_id, pi_id, held, plan), daemon=True, name="courier-after"
            ).start()

    def _after_token(self, order_id: str, pi_id: str, held: list[dict[str, Any]], plan: Plan) -> None:
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    if self._stack.item("PaymentsTable", {"paymentIntentId": pi_id}).get("taskToken"):
                        break
                time.sleep(0.05)
            for event in held:
                self._send(order_id, event, delay=0.0, plan=plan)
        finally:
            self._done(order_id)

    def flush_held(self, order_id: str) -> None:
        """Deliver whatever a plan still holds (its token never came, or its group never closed): late."""
        with self._lock:
            plan = self._plans.get(order_id)
            held = [event for events in (plan.held.values() if plan else ()) for event in events]
            if plan:
                plan.held.clear()
        for event in held:
            self._send(order_id, event, delay=0.0, plan=None)

    def replay(self, order_id: str) -> int:
        """Stripe delivering every event of the order once more, long after (a resend from the dashboard)."""
        with self._lock:
            events = list({e["id"]: e for e in self._delivered.get(order_id, [])}.values())
        for event in events:
            self._send(order_id, event, delay=0.0, plan=None)
        return len(events)

    def drain(self, order_id: str, timeout: float) -> bool:
        """Until every delivery of the order has been answered (its retries too), and every message it put on the bus
        handled, and no read of one is under way (what it does, the verdict must see)."""

        def drained() -> bool:
            reading = any(self._reading[bus_id] for bus_id in self._bus_of.get(order_id, ()))
            return self._pending[order_id] <= 0 and not reading

        with self._lock:
            return self._lock.wait_for(drained, timeout)

    # -- the partner bus -------------------------------------------------------------------------------

    def put_on_bus(self, order_id: str, event: dict[str, Any], entry: dict[str, Any]) -> str:
        """Put an entry on the partner bus, and follow the message the rule makes of it (if its type is one the rule
        routes) until the StripeEvents function handled it."""
        bus_id = self._stack.cloud.put_partner_event(entry)
        if entry["DetailType"] not in self._routed:
            return bus_id
        with self._lock:
            message = self._bus.setdefault(bus_id, BusMessage(order_id, event["id"], event["type"]))
            message.order_id = order_id
            self._bus_of[order_id].append(bus_id)
            if not message.handled:
                self._pending[order_id] += 1
        return bus_id

    def reading(self, records: list[dict[str, Any]]) -> None:
        """The StripeEvents function is about to read these queue messages (an SQS batch)."""
        with self._lock:
            for bus_id in _bus_ids(records):
                self._reading[bus_id] += 1

    def messages_read(self, records: list[dict[str, Any]], result: Any, error: dict[str, Any] | None) -> None:
        """The StripeEvents function read these queue messages (an SQS batch) and answered `result` (its
        batchItemFailures), or failed (`error`: every message comes again)."""
        failed = {str(item.get("itemIdentifier")) for item in ((result or {}).get("batchItemFailures") or [])}
        with self._lock:
            for record in records:
                try:
                    envelope = json.loads(record.get("body") or "")
                    bus_id, detail = str(envelope["id"]), envelope.get("detail") or {}
                except (ValueError, TypeError, KeyError):
                    continue
                message = self._bus.setdefault(bus_id, BusMessage("", str(detail.get("id")), str(detail.get("type"))))
                self._reading[bus_id] -= 1
                was_handled = message.handled
                if error is not None:
                    message.reads.append(f"crashed: {error.get('errorType')}")
                else:
                    message.reads.append("failed" if record.get("messageId") in failed else "handled")
                if message.handled and not was_handled and message.order_id:
                    self._pending[message.order_id] -= 1
            self._lock.notify_all()

    def _wait_read(self, bus_ids: list[str], timeout: float) -> None:
        """Until the StripeEvents function has read each of these messages once (handled or not)."""
        if bus_ids:
            with self._lock:
                self._lock.wait_for(lambda: all(self._bus[bus_id].reads for bus_id in bus_ids), timeout)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        for timer in list(self._timers):
            timer.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- sending ---------------------------------------------------------------------------------

    def _send(self, order_id: str, event: dict[str, Any], *, delay: float, plan: Plan | None, attempt: int = 1) -> None:
        copies = 1 + (plan.duplicates if plan is not None else 0)
        for copy_index in range(copies):
            extra = 0.0 if copy_index == 0 else plan.rng.uniform(0, 1.0) if plan else 0.0
            self._schedule(order_id, event, delay + extra, attempt)

    def _schedule(self, order_id: str, event: dict[str, Any], delay: float, attempt: int) -> None:
        with self._lock:
            if self._stopped:
                return
            self._pending[order_id] += 1
        if delay <= 0:
            self._pool.submit(self._run, order_id, event, attempt)
        else:
            timer = threading.Timer(delay, lambda: self._pool.submit(self._run, order_id, event, attempt))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def _run(self, order_id: str, event: dict[str, Any], attempt: int) -> None:
        try:
            self._deliver(order_id, event, attempt)
        finally:
            self._done(order_id)

    def _deliver(self, order_id: str, event: dict[str, Any], attempt: int) -> str | None:
        """One delivery of the event to the order's destination; the message's EventBridge id, by the bus."""
        with self._lock:
            plan = self._plans.get(order_id)
        if plan is not None and plan.by_bus:
            return self._put(order_id, event, attempt)
        body = json.dumps(event, indent=2)
        status, error = None, None
        try:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
            try:
                connection.request(
                    "POST",
                    self._path,
                    body=body.encode(),
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                        "Stripe-Signature": sign_payload(body, SIGNING_SECRET),
                    },
                )
                response = connection.getresponse()
                response.read()
                status = response.status
            finally:
                connection.close()
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure}"
        with self._lock:
            self._record(DeliveryRecord(order_id, event["id"], event["type"], attempt, status, error))
            if status == 200:
                self._delivered[order_id].append(event)
        if status != 200 and attempt <= len(self.retry_backoff):
            self._schedule(order_id, event, self.retry_backoff[attempt - 1], attempt + 1)
        return None

    def _put(self, order_id: str, event: dict[str, Any], attempt: int) -> str | None:
        """The PutEvents entry Stripe's EventBridge destination puts (`put_events_entry`); a put that raised is
        tried again with the webhook's backoff."""
        bus_id, error = None, None
        try:
            bus_id = self.put_on_bus(order_id, event, put_events_entry(event, STRIPE_EVENT_SOURCE))
        except Exception as failure:  # noqa: BLE001 - whatever the put raised is a failed delivery, tried again
            error = f"{type(failure).__name__}: {failure}"
        with self._lock:
            self._record(DeliveryRecord(order_id, event["id"], event["type"], attempt, None, error, by_bus=True))
            if error is None:
                self._delivered[order_id].append(event)
        if error is not None and attempt <= len(self.retry_backoff):
            self._schedule(order_id, event, self.retry_backoff[attempt - 1], attempt + 1)
        return bus_id

    def record(self, record: DeliveryRecord) -> None:
        """A delivery FakeStripe made itself (plan "stripe"), as `destinations` passed it on."""
        with self._lock:
            self._record(record)

    def _record(self, record: DeliveryRecord) -> None:  # the caller holds self._lock
        self._records[record.order_id].append(record)

    def _done(self, order_id: str) -> None:
        with self._lock:
            self._pending[order_id] -= 1
            self._lock.notify_all()
