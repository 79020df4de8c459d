"""Amazon EventBridge, the other kind of event destination (https://docs.stripe.com/event-destinations/eventbridge).

Stripe puts each event on a partner event source it creates in the merchant's AWS account, named
`aws.partner/stripe.com/ed_...` after the event destination; the merchant associates it with an event bus and
routes it with rules. What a rule's target receives is EventBridge's envelope around Stripe's event
(https://docs.stripe.com/event-destinations/eventbridge#event-structure, the section stripe-python's
`maybe_extract_from_cloud_provider_envelope` cites): `detail-type` is the Stripe event's `type`, `source` the
partner event source, `resources` empty, and `detail` the whole Stripe event, snapshot or thin, as a webhook
endpoint would get it but with no `Stripe-Signature` (the envelope stripe/stripe-python's own tests of
cloud-provider payloads build: `"detail-type": "customer.created"`, `"source": "aws.partner/stripe.com/ed_123"`,
`"resources": []`, the event in `detail`). stripe-python calls EventBridge "a trusted source" and reads it
without verification: `StripeClient.construct_event_without_verification` (snapshot) or
`StripeClient.parse_event_notification_without_verification` (thin), both of which unwrap `detail`.

Here `publish(entry)` stands in for Stripe's call to EventBridge: the local runtime gives a callable that puts
the PutEvents entry on its (moto) bus. A `publish` that raises is a failed delivery and is retried with the
webhook backoff. Stripe documents retries for webhook endpoints
(https://docs.stripe.com/workbench/event-destinations) and, as far as we found, none for EventBridge: that part
is the fake's assumption. boto3's `put_events` reports a refused entry in `FailedEntryCount` without raising: a
`publish` should raise then.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_runtime.fake_stripe.objects import Obj

DEFAULT_SOURCE = "aws.partner/stripe.com/ed_test_local"
# PutPartnerEvents' and the event source APIs' pattern for a partner event source name
# (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DeactivateEventSource.html)
PARTNER_SOURCE = re.compile(r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}")

Publish = Callable[[dict[str, Any]], object]


def put_events_entry(event: Obj, source: str) -> dict[str, Any]:
    """The PutEvents entry that makes EventBridge deliver Stripe's envelope for `event`."""
    return {"Source": source, "DetailType": event["type"], "Detail": json.dumps(event), "Resources": []}


@dataclass(frozen=True, eq=False)
class EventBridgeDestination:
    publish: Publish
    source: str
    payload: str  # "snapshot" | "thin"
    destination_type = "amazon_eventbridge"  # the event destination `type` Stripe gives it

    def __post_init__(self) -> None:
        if not PARTNER_SOURCE.fullmatch(self.source) or len(self.source) > 256:
            raise ValueError(f"not a partner event source name: {self.source!r}")

    @property
    def address(self) -> str:
        return self.source

    def send(self, event: Obj) -> tuple[int | None, str | None]:
        """(None, None) once `publish` returned; (None, the error) when it raised."""
        try:
            self.publish(put_events_entry(event, self.source))
        except Exception as e:  # noqa: BLE001 - whatever the runtime's client raised is a failed delivery
            return None, f"{type(e).__name__}: {e}"
        return None, None
