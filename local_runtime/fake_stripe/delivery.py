"""Delivery to every event destination, webhook endpoints and Amazon EventBridge alike
(https://docs.stripe.com/event-destinations): each event goes, in the payload the destination takes (snapshot or
thin), to every destination, from a background thread, and a failed delivery is retried with backoff ("In test
mode, Stripe retries three times over a few hours", https://docs.stripe.com/workbench/event-destinations; here
after `retry_backoff`).

Stripe promises neither order nor single delivery ("Stripe doesn't guarantee delivery of events in the order in
which they're generated", "Webhook endpoints might occasionally receive the same event more than once",
https://docs.stripe.com/webhooks#event-ordering, #handle-duplicate-events), so the switches make both happen, for
every destination: duplicates, reordering, delay, loss and holding back. `drop` and `hold` predicates receive
the event in the payload at hand, a snapshot `event` or a thin `v2.core.event`, and are only asked about a
payload some destination takes.
"""

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from local_runtime.fake_stripe.objects import Obj

PAYLOADS = ("snapshot", "thin")
TERMINAL_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
)
Predicate = Callable[[Obj], bool]


class Destination(Protocol):
    destination_type: str  # "webhook_endpoint" | "amazon_eventbridge"
    payload: str  # "snapshot" | "thin"

    @property
    def address(self) -> str: ...  # the endpoint's URL, or the partner event source

    def send(self, event: Obj) -> tuple[int | None, str | None]: ...  # (HTTP status, error)


@dataclass
class Delivery:
    event_id: str
    type: str
    url: str  # the webhook endpoint's URL, or the EventBridge partner event source
    attempt: int
    status: int | None  # HTTP status; None for EventBridge, a connection error or a drop
    error: str | None = None  # "dropped", the connection error, or what `publish` raised
    at: float = field(default_factory=time.time)
    destination: str = "webhook_endpoint"  # or "amazon_eventbridge"
    payload: str = "snapshot"  # or "thin"

    @property
    def delivered(self) -> bool:
        return self.error is None and (self.status is None or 200 <= self.status < 300)


@dataclass
class _Switches:
    duplicate: int = 0
    reorder: bool = False
    delay_seconds: float = 0.0
    drop: Predicate | None = None
    hold: bool | Predicate = False


@dataclass
class _Notice:
    """One event in one payload, with the PaymentIntent whose events reordering keeps together."""

    event: Obj
    payload: str
    group: str
    closes_group: bool


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: Obj = field(compare=False)
    destination: Destination = field(compare=False)
    attempt: int = field(default=1, compare=False)


class EventDelivery:
    def __init__(self, retry_backoff: tuple[float, ...]) -> None:
        self.retry_backoff = retry_backoff
        self.deliveries: list[Delivery] = []
        self._destinations: list[Destination] = []
        self._cv = threading.Condition()  # guards everything here
        self._switches = _Switches()
        self._jobs: list[_Job] = []
        self._seq = 0
        self._inflight = 0
        self._held: list[_Notice] = []
        self._parked: dict[tuple[str, str], list[_Notice]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._deliver_loop, name="fake-stripe-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout=5)

    def add(self, destination: Destination) -> None:
        if destination.payload not in PAYLOADS:
            raise ValueError(f"payload must be one of {PAYLOADS}, not {destination.payload!r}")
        with self._cv:
            self._destinations.append(destination)

    def remove_all(self) -> None:
        with self._cv:
            self._destinations.clear()

    def count(self, destination_type: str, payload: str) -> int:
        with self._cv:
            return sum(d.destination_type == destination_type and d.payload == payload for d in self._destinations)

    def set_delivery(
        self,
        *,
        duplicate: int = 0,
        reorder: bool = False,
        delay_seconds: float = 0.0,
        drop: Predicate | None = None,
        hold: bool | Predicate = False,
    ) -> None:
        """Replace all delivery switches (call with no arguments to restore normal delivery). `hold` is True for
        every event, or a predicate like `drop`; held events wait for `release_held`."""
        with self._cv:
            self._switches = _Switches(duplicate, reorder, delay_seconds, drop, hold)
            if not reorder:  # flush events parked for reordering, still reversed
                parked, self._parked = self._parked, {}
                for group in parked.values():
                    for notice in reversed(group):
                        self._schedule(notice)

    def release_held(self) -> None:
        with self._cv:
            held, self._held = self._held, []
            for notice in held:
                self._route(notice)

    def wait(self, timeout: float) -> None:
        """Block until no delivery is queued or in flight (held/parked events don't count)."""
        with self._cv:
            if not self._cv.wait_for(lambda: not self._jobs and not self._inflight, timeout):
                raise TimeoutError(f"{len(self._jobs)} event deliveries still pending")

    def publish(self, snapshot_event: Obj, thin_event: Obj | None) -> None:
        obj = snapshot_event["data"]["object"]
        group = obj["id"] if obj["object"] == "payment_intent" else obj.get("payment_intent") or obj["id"]
        closes = snapshot_event["type"] in TERMINAL_EVENTS
        with self._cv:
            wanted = {d.payload for d in self._destinations}
            for payload, event in (("snapshot", snapshot_event), ("thin", thin_event)):
                if event is not None and payload in wanted:
                    self._admit(_Notice(event, payload, group, closes))

    def _admit(self, notice: _Notice) -> None:
        switches = self._switches
        if switches.drop and switches.drop(notice.event):
            for destination in self._taking(notice.payload):
                self.deliveries.append(self._record(notice.event, destination, 0, None, "dropped"))
        elif switches.hold(notice.event) if callable(switches.hold) else switches.hold:
            self._held.append(notice)
        else:
            self._route(notice)

    def _route(self, notice: _Notice) -> None:
        if not self._switches.reorder:
            return self._schedule(notice)
        parked = self._parked.setdefault((notice.payload, notice.group), [])
        parked.append(notice)
        if notice.closes_group:
            for earlier in reversed(self._parked.pop((notice.payload, notice.group))):
                self._schedule(earlier)

    def _schedule(self, notice: _Notice) -> None:
        due = time.monotonic() + self._switches.delay_seconds
        for destination in self._taking(notice.payload):
            for _ in range(1 + self._switches.duplicate):
                self._push(due, notice.event, destination)
        self._cv.notify_all()

    def _taking(self, payload: str) -> list[Destination]:
        return [d for d in self._destinations if d.payload == payload]

    def _push(self, due: float, event: Obj, destination: Destination, attempt: int = 1) -> None:
        self._seq += 1
        heapq.heappush(self._jobs, _Job(due, self._seq, event, destination, attempt))

    def _deliver_loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._jobs or self._jobs[0].due > time.monotonic()):
                    self._cv.wait(self._jobs[0].due - time.monotonic() if self._jobs else None)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                self._inflight += 1
            status, error = job.destination.send(job.event)
            with self._cv:
                delivery = self._record(job.event, job.destination, job.attempt, status, error)
                self.deliveries.append(delivery)
                if not delivery.delivered and job.attempt <= len(self.retry_backoff):
                    due = time.monotonic() + self.retry_backoff[job.attempt - 1]
                    self._push(due, job.event, job.destination, job.attempt + 1)
                self._inflight -= 1
                self._cv.notify_all()

    @staticmethod
    def _record(event: Obj, destination: Destination, attempt: int, status: int | None, error: str | None) -> Delivery:
        return Delivery(
            event["id"],
            event["type"],
            destination.address,
            attempt,
            status,
            error,
            destination=destination.destination_type,
            payload=destination.payload,
        )
