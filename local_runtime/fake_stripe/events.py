"""Snapshot events (https://docs.stripe.com/api/events): recorded for every change, each with the thin event that
mirrors it (thin_events.py), sent to every event destination (delivery.py), and listed or retrieved through the
API for 30 days ("List events, going back up to 30 days",
https://docs.stripe.com/api/events/list; "Retrieves the details of an event if it was created in the last
30 days", https://docs.stripe.com/api/events/retrieve)."""

import fnmatch

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.delivery import EventDelivery
from local_runtime.fake_stripe.errors import Rejected, exclusive, find
from local_runtime.fake_stripe.forms import read_str, read_str_list
from local_runtime.fake_stripe.lists import list_page
from local_runtime.fake_stripe.objects import API_VERSION, Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.thin_events import ThinEvents

RETENTION_SECONDS = 30 * 24 * 3600


class EventLog:
    def __init__(self, clock: Clock, delivery: EventDelivery, thin_events: ThinEvents) -> None:
        self._clock, self._delivery, self._thin_events = clock, delivery, thin_events
        self.events: list[Obj] = []  # every event, oldest first, however old

    def emit(self, type_: str, obj: Obj, request: RequestRef, *, at: float | None = None) -> None:
        """Record and send an event about `obj` now, or dated `at` (what Stripe did on its own while a test's
        clock skipped ahead, such as an authorization expiring)."""
        moment = self._clock.now() if at is None else at
        event: Obj = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(moment),
            "data": {"object": snapshot(obj)},
            "livemode": False,
            "pending_webhooks": self._delivery.count("webhook_endpoint", "snapshot"),
            "request": {"id": request.id, "idempotency_key": request.idempotency_key},
            "type": type_,
        }
        self.events.append(event)
        self._delivery.publish(event, self._thin_events.record(event, moment, request))

    def retrieve(self, event_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find({event["id"]: event for event in self._retained()}, "event", event_id))

    def list_all(self, params: Obj, request: RequestRef) -> Obj:
        """`type` is one event name or a pattern with `*`; `types` up to 20 names; not both."""
        type_, types = read_str(params, "type"), read_str_list(params, "types")
        if type_ and types:
            raise exclusive("type", "types")
        if types is not None and len(types) > 20:
            raise Rejected(400, "Invalid array: types must have at most 20 elements", param="types")

        def wanted(event: Obj) -> bool:
            if type_:
                return fnmatch.fnmatchcase(event["type"], type_)
            return types is None or event["type"] in types

        return list_page("event", "/v1/events", self._retained(), params, ("type", "types"), wanted)

    def _retained(self) -> list[Obj]:
        oldest = self._clock.now() - RETENTION_SECONDS
        return [event for event in self.events if event["created"] >= oldest]
