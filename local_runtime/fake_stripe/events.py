"""Events (https://docs.stripe.com/api/events): recorded for every change, sent to webhook endpoints, and
retrieved through the API."""

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import find
from local_runtime.fake_stripe.objects import API_VERSION, Obj, RequestRef, new_id, snapshot
from local_runtime.fake_stripe.webhooks import WebhookSender


class EventLog:
    def __init__(self, clock: Clock, webhooks: WebhookSender) -> None:
        self._clock, self._webhooks = clock, webhooks
        self.events: list[Obj] = []  # oldest first

    def emit(self, type_: str, obj: Obj, request: RequestRef) -> None:
        event: Obj = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._clock.timestamp(),
            "data": {"object": snapshot(obj)},
            "livemode": False,
            "pending_webhooks": self._webhooks.endpoint_count,
            "request": {"id": request.id, "idempotency_key": request.idempotency_key},
            "type": type_,
        }
        self.events.append(event)
        self._webhooks.publish(event)

    def retrieve(self, event_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find({event["id"]: event for event in self.events}, "event", event_id))
