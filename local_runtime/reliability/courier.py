"""Stripe's webhook deliveries: each order's events, captured as Stripe emits them, delivered over HTTP per its plan."""

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

from local_runtime.fake_stripe import sign_payload
from local_runtime.reliability.settings import SIGNING_SECRET

if TYPE_CHECKING:
    from local_runtime.reliability.stack import Stack


# The event types the README tells operators to subscribe the endpoint to: Stripe sends no others.
SUBSCRIBED = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
        "payment_intent.requires_action",
    }
)
GROUP_CLOSERS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"})


@dataclass
class Plan:
    """How Stripe delivers one order's events. The modes (`Courier.capture` and `token_about_to_be_stored`):

    - stripe: FakeStripe's own delivery (every event type, one at a time, its own retries)
    - immediate: each event as soon as Stripe emits it
    - before_token: held until the execution is about to store its task token, then delivered first
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
    released: set[str] = field(default_factory=set)  # PaymentIntents whose held events went out
    held: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class DeliveryRecord:
    order_id: str
    event_id: str
    type: str
    attempt: int
    status: int | None
    error: str | None


class Courier:
    """Delivers Stripe's events to the webhook over HTTP, signed as Stripe signs them, per an order's plan.

    Like Stripe: several deliveries in flight at once, a non-2xx answer retried with backoff, and a
    delivery's signature made when it is sent.
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
        self._plans: dict[str, Plan] = {}
        self._pi_orders: dict[str, str] = {}
        self._order_pis: dict[str, list[str]] = defaultdict(list)
        self._delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._records: dict[str, list[DeliveryRecord]] = defaultdict(list)
        self._event_ids: dict[str, set[str]] = defaultdict(set)
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

    def event_ids_of(self, order_id: str) -> set[str]:
        with self._lock:
            return set(self._event_ids.get(order_id, ()))

    # -- FakeStripe's drop predicate -------------------------------------------------------------

    def capture(self, event: dict[str, Any]) -> bool:
        """Called as Stripe emits each event. True: the courier owns it (FakeStripe won't deliver it)."""
        obj = (event.get("data") or {}).get("object") or {}
        order_id = (obj.get("metadata") or {}).get("order_id")
        pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        with self._lock:
            if order_id and pi_id and pi_id not in self._pi_orders:
                self._pi_orders[pi_id] = order_id
                self._order_pis[order_id].append(pi_id)
            if order_id:
                self._event_ids[order_id].add(event["id"])
            plan = self._plans.get(order_id or "")
            if plan is None or plan.mode == "stripe":
                return False
            if event["type"] not in SUBSCRIBED:
                return True
            if plan.mode == "lost" or plan.rng.random() < plan.drop_rate:
                self._record(DeliveryRecord(order_id, event["id"], event["type"], 0, None, "dropped"))
                return True
            if plan.mode in ("before_token", "racing_token", "after_token") and pi_id not in plan.released:
                plan.held[pi_id].append(event)
                return True
            if plan.mode == "reversed":
                plan.held[pi_id].append(event)
                if event["type"] in GROUP_CLOSERS:
                    group = plan.held.pop(pi_id)
                    for index, parked in enumerate(reversed(group)):
                        self._send(order_id, parked, delay=0.05 * index, plan=plan)
                return True
            delay = plan.rng.uniform(0, plan.max_delay) if plan.mode == "delayed" else 0.0
            self._send(order_id, event, delay=delay, plan=plan)
            return True

    # -- the task-token races --------------------------------------------------------------------

    def token_about_to_be_stored(self, order_id: str, pi_id: str) -> None:
        """RegisterTaskToken is about to run for this PaymentIntent: release what the plan held for it."""
        with self._lock:
            plan = self._plans.get(order_id)
            if plan is None or plan.mode not in ("before_token", "racing_token", "after_token"):
                return
            plan.released.add(pi_id)
            held = plan.held.pop(pi_id, [])
        if plan.mode == "before_token":
            for event in held:  # synchronously, before the token is stored
                self._deliver(order_id, event, attempt=1)
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
        with self._lock:
            return self._lock.wait_for(lambda: self._pending[order_id] <= 0, timeout)

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

    def _deliver(self, order_id: str, event: dict[str, Any], attempt: int) -> None:
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

    def _record(self, record: DeliveryRecord) -> None:  # the caller holds self._lock
        self._records[record.order_id].append(record)

    def _done(self, order_id: str) -> None:
        with self._lock:
            self._pending[order_id] -= 1
            self._lock.notify_all()
