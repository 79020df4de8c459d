"""Thin events for API v1 objects: the small, unversioned notification Stripe sends an event destination that
takes the `thin` payload, and the Events v2 API that answers what the SDK's helpers then ask.

Stripe's facts, as this module follows them:

- Thin events for v1 resources are generally available since 2026-09-30.endive; their names carry a `v1.`
  prefix (`v1.payment_intent.succeeded` for `payment_intent.succeeded`); `related_object` names the object and its
  API path; a fetched v2 Event's `snapshot_event` names the snapshot event it mirrors, and `changes` holds the
  before/after values "when available"
  (https://docs.stripe.com/changelog/endive/2026-09-30/thin-events-for-api-v1-resources-generally-available).
- What is pushed: `id`, `object: "v2.core.event"`, `type`, `created` (a timestamp), `livemode`, `context`
  (nullable: only set for a connected account), `reason` (nullable, `{"type": "request", "request": {id,
  idempotency_key}}`) and `related_object` (`{id, type, url}`); `changes` and `data` are "fetched attributes",
  only in what GET /v2/core/events/{id} answers (https://docs.stripe.com/api/v2/core/events/event-types,
  https://docs.stripe.com/api/v2/core/events/object). Stripe's own example writes `created` as RFC 3339 in UTC
  with milliseconds, `"2024-09-17T06:20:52.246Z"`, and `related_object.type` as the object's tag with its URL
  path (`"billing.meter"`, `"/v1/billing/meters/mtr_..."`)
  (https://docs.stripe.com/changelog/acacia/2024-09-30/api-v2-thin-events).
- An event can be retrieved "if it was created in the last 30 days"
  (https://docs.stripe.com/api/v2/core/events/retrieve).

A thin event is recorded beside each snapshot event of a v1 object, at the same instant (so in the same order):
its `created` is the snapshot's `created` with the milliseconds the snapshot drops.
"""

from datetime import UTC, datetime

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import ApiError
from local_runtime.fake_stripe.forms import check_known
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot

RETENTION_SECONDS = 30 * 24 * 3600
V1_OBJECT_PATHS = {"payment_intent": "/v1/payment_intents", "charge": "/v1/charges", "refund": "/v1/refunds"}


def rfc3339(moment: float) -> str:
    """`2024-09-17T06:20:52.246Z`: UTC, milliseconds truncated so that the second is the snapshot's `created`."""
    whole_ms = int(moment * 1000) / 1000
    return datetime.fromtimestamp(whole_ms, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ThinEvents:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.events: list[Obj] = []  # the notifications as destinations receive them, oldest first
        self._fetched: dict[str, tuple[float, Obj]] = {}  # id -> (moment, what GET /v2/core/events/{id} answers)

    def record(self, snapshot_event: Obj, moment: float, request: RequestRef) -> Obj | None:
        """The thin event mirroring `snapshot_event`, or None when its object is not one thin events cover."""
        obj = snapshot_event["data"]["object"]
        path = V1_OBJECT_PATHS.get(obj["object"])
        if path is None:
            return None
        reason = None
        if request.id is not None:
            reason = {"type": "request", "request": {"id": request.id, "idempotency_key": request.idempotency_key}}
        notification: Obj = {
            "id": new_id("evt_test", 46),
            "object": "v2.core.event",
            "type": f"v1.{snapshot_event['type']}",
            "created": rfc3339(moment),
            "livemode": False,
            "context": None,
            "reason": reason,
            "related_object": {"id": obj["id"], "type": obj["object"], "url": f"{path}/{obj['id']}"},
        }
        self.events.append(notification)
        fetched = {**snapshot(notification), "changes": None, "snapshot_event": snapshot_event["id"]}
        self._fetched[notification["id"]] = (moment, fetched)
        return snapshot(notification)

    def retrieve(self, event_id: str, params: Obj, request: RequestRef) -> Obj:
        """GET /v2/core/events/{id}. A snapshot event's id is not a v2 Event: 404, as for an unknown one."""
        check_known(params, set())
        kept = self._fetched.get(event_id)
        if kept is None or kept[0] < self._clock.now() - RETENTION_SECONDS:
            raise ApiError(404, f"No such event: '{event_id}'", code="resource_missing")
        return snapshot(kept[1])
