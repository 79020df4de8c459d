"""Webhook delivery as Stripe does it (https://docs.stripe.com/webhooks): each event POSTed as JSON to every
endpoint, signed with the endpoint's secret, retried after a failure; plus switches for the chaos a
receiver must survive (duplicates, reordering, delay, loss, holding back)."""

import hashlib
import heapq
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from local_runtime.fake_stripe.objects import Obj

WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
TERMINAL_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
)


def sign_payload(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>
    (https://docs.stripe.com/webhooks#verify-manually).

    Bytes are signed as they are, so that a body that is not UTF-8 can be signed too. The timestamp is real
    time, whatever the fake's clock says: receivers check it against their own."""
    t = int(time.time()) if timestamp is None else timestamp
    body = payload if isinstance(payload, bytes) else payload.encode()
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


@dataclass
class Delivery:
    event_id: str
    type: str
    url: str
    attempt: int
    status: int | None  # HTTP status, None on connection error or drop
    error: str | None = None  # "dropped", or the connection error
    at: float = field(default_factory=time.time)


@dataclass
class _DeliveryConfig:
    duplicate: int = 0
    reorder: bool = False
    delay_seconds: float = 0.0
    drop: Callable[[Obj], bool] | None = None
    hold: bool = False


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: Obj = field(compare=False)
    url: str = field(compare=False)
    secret: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookSender:
    def __init__(self, retry_backoff: tuple[float, ...]) -> None:
        self.retry_backoff = retry_backoff
        self.deliveries: list[Delivery] = []
        self._endpoints: list[tuple[str, str]] = []  # (url, signing secret)
        self._cv = threading.Condition()  # guards everything here
        self._config = _DeliveryConfig()
        self._jobs: list[_Job] = []
        self._seq = 0
        self._inflight = 0
        self._held: list[Obj] = []
        self._parked: dict[str, list[Obj]] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._deliver_loop, name="fake-stripe-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread:
            self._thread.join(timeout=5)

    @property
    def endpoint_count(self) -> int:
        return len(self._endpoints)

    def add_endpoint(self, url: str, secret: str) -> None:
        with self._cv:
            self._endpoints.append((url, secret))

    def set_delivery(
        self,
        *,
        duplicate: int = 0,
        reorder: bool = False,
        delay_seconds: float = 0.0,
        drop: Callable[[Obj], bool] | None = None,
        hold: bool = False,
    ) -> None:
        """Replace all delivery switches (call with no arguments to restore normal delivery)."""
        with self._cv:
            self._config = _DeliveryConfig(duplicate, reorder, delay_seconds, drop, hold)
            if not reorder:  # flush events parked for reordering, still reversed
                parked, self._parked = self._parked, {}
                for group in parked.values():
                    for event in reversed(group):
                        self._schedule(event)

    def release_held(self) -> None:
        with self._cv:
            held, self._held = self._held, []
            for event in held:
                self._route(event)

    def wait(self, timeout: float) -> None:
        """Block until no delivery is queued or in flight (held/parked events don't count)."""
        with self._cv:
            if not self._cv.wait_for(lambda: not self._jobs and not self._inflight, timeout):
                raise TimeoutError(f"{len(self._jobs)} webhook deliveries still pending")

    def publish(self, event: Obj) -> None:
        with self._cv:
            config = self._config
            if config.drop and config.drop(event):
                self.deliveries.append(Delivery(event["id"], event["type"], "", 0, None, "dropped"))
            elif config.hold:
                self._held.append(event)
            else:
                self._route(event)

    def _route(self, event: Obj) -> None:
        if not self._config.reorder:
            return self._schedule(event)
        obj = event["data"]["object"]
        group = obj["id"] if obj["object"] == "payment_intent" else obj.get("payment_intent") or obj["id"]
        self._parked.setdefault(group, []).append(event)
        if event["type"] in TERMINAL_EVENTS:
            for parked in reversed(self._parked.pop(group)):
                self._schedule(parked)

    def _schedule(self, event: Obj) -> None:
        due = time.monotonic() + self._config.delay_seconds
        for url, secret in self._endpoints:
            for _ in range(1 + self._config.duplicate):
                self._push(due, event, url, secret)
        self._cv.notify_all()

    def _push(self, due: float, event: Obj, url: str, secret: str, attempt: int = 1) -> None:
        self._seq += 1
        heapq.heappush(self._jobs, _Job(due, self._seq, event, url, secret, attempt))

    def _deliver_loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._jobs or self._jobs[0].due > time.monotonic()):
                    self._cv.wait(self._jobs[0].due - time.monotonic() if self._jobs else None)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                self._inflight += 1
            status, error = self._post(job)
            with self._cv:
                self.deliveries.append(
                    Delivery(job.event["id"], job.event["type"], job.url, job.attempt, status, error)
                )
                if not (status and 200 <= status < 300) and job.attempt <= len(self.retry_backoff):
                    due = time.monotonic() + self.retry_backoff[job.attempt - 1]
                    self._push(due, job.event, job.url, job.secret, job.attempt + 1)
                self._inflight -= 1
                self._cv.notify_all()

    def _post(self, job: _Job) -> tuple[int | None, str | None]:
        body = json.dumps(job.event, indent=2)
        request = urllib.request.Request(
            job.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": WEBHOOK_USER_AGENT,
                "Stripe-Signature": sign_payload(body, job.secret),
            },
        )
        try:
            with self._opener.open(request, timeout=5) as response:
                return response.status, None
        except urllib.error.HTTPError as e:
            return e.code, None
        except (OSError, ValueError) as e:
            return None, f"{type(e).__name__}: {e}"
