"""What a verified Stripe event means for the payment workflow.

The webhook answers 200 for everything Stripe should not send again (duplicates, events for
PaymentIntents this deployment did not create, spent task tokens) and raises AwsUnavailable
only for our own transient failures, which the handler turns into a 5xx so that Stripe retries.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from payments.records import PaymentRecords
from payments.task_tokens import TaskTokens

# Decline codes worth a new attempt (the customer can fix them, or the bank may say yes later).
RETRYABLE_FAILURES = frozenset({
    "insufficient_funds", "processing_error", "try_again_later", "issuer_not_available",
    "approve_with_id", "reenter_transaction",
})  # fmt: skip


@dataclass(frozen=True)
class EventKind:
    status: str
    rank: int  # orders events of one PaymentIntent created in the same second
    resumes: bool  # carries an outcome that resumes the waiting execution
    terminal: bool  # Stripe allows nothing after it


EVENT_KINDS = {
    "payment_intent.requires_action": EventKind("requires_action", 1, resumes=False, terminal=False),
    "payment_intent.processing": EventKind("processing", 1, resumes=False, terminal=False),
    "payment_intent.payment_failed": EventKind("payment_failed", 2, resumes=True, terminal=False),
    # CaptureMethod manual: the card is authorised, nothing is charged until the workflow captures.
    "payment_intent.amount_capturable_updated": EventKind("requires_capture", 2, resumes=True, terminal=False),
    "payment_intent.succeeded": EventKind("succeeded", 3, resumes=True, terminal=True),
    "payment_intent.canceled": EventKind("canceled", 3, resumes=True, terminal=True),
}


class WebhookResult(StrEnum):
    RESUMED = "resumed"  # the waiting execution has the outcome
    RECORDED = "recorded"  # stored; the token writer resumes when it arrives, or nothing waits
    PROGRESS = "progress"  # processing / requires_action: recorded, not final
    DUPLICATE = "duplicate"  # an event we applied already, or one older than what we know
    TOKEN_SPENT = "token_spent"  # the task was resumed before or timed out
    IGNORED_TYPE = "ignored_type"
    NOT_OURS = "not_ours"  # a PaymentIntent this deployment did not create
    MALFORMED = "malformed"  # signed by Stripe but not an event we can read


def _is_unix_time(value: Any) -> bool:
    """Stripe's `created`: seconds since the epoch. Anything else can neither order events nor be stored."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**11


def outcome_of(event_id: str, payment_intent: dict[str, Any], status: str) -> dict[str, Any]:
    """The task output the execution resumes with."""
    error = payment_intent.get("last_payment_error") or {}
    failure_code = error.get("decline_code") or error.get("code")
    reason = f"{failure_code}: {error.get('message')}" if failure_code and error.get("message") else failure_code
    return {
        "status": status,
        "paymentIntentId": payment_intent["id"],
        "eventId": event_id,
        "failureCode": error.get("code"),
        "declineCode": error.get("decline_code"),
        "failureMessage": error.get("message"),
        "reason": reason or f"PaymentIntent {status}",
        "retryable": status == "payment_failed" and failure_code in RETRYABLE_FAILURES,
    }


def handle_stripe_event(
    event: dict[str, Any], *, app_id: str, payments: PaymentRecords, task_tokens: TaskTokens, now: datetime,
    fetch_payment_intent: Callable[[str], dict[str, Any] | None], recover: Callable[[str], None] | None = None,
) -> WebhookResult:  # fmt: skip
    """Every Stripe event, whatever brought it (the webhook, or EventBridge) and whatever its payload (a snapshot,
    or a thin event whose PaymentIntent `fetch_payment_intent` reads from Stripe), takes this one path."""
    if event.get("object") == "v2.core.event":
        event = snapshot_of_thin_event(event, fetch_payment_intent)
    return handle_payment_event(
        event, app_id=app_id, payments=payments, task_tokens=task_tokens, now=now, recover=recover
    )


def handle_payment_event(
    event: dict[str, Any], *, app_id: str, payments: PaymentRecords, task_tokens: TaskTokens, now: datetime,
    recover: Callable[[str], None] | None = None,
) -> WebhookResult:  # fmt: skip
    """A snapshot event. `recover(payment_intent_id)` starts the reconciler for a payment that succeeded after its
    execution stopped waiting: nothing else would fulfil or refund it."""
    kind = EVENT_KINDS.get(str(event.get("type")))
    if kind is None:
        return WebhookResult.IGNORED_TYPE
    data = event.get("data")
    payment_intent = data.get("object") if isinstance(data, dict) else None
    event_id, created = event.get("id"), event.get("created")
    if (
        not isinstance(payment_intent, dict)
        or payment_intent.get("object") != "payment_intent"
        or not isinstance(payment_intent.get("id"), str)
        or not isinstance(event_id, str)
        or not _is_unix_time(created)
        or not isinstance(payment_intent.get("metadata") or {}, dict)
        or not isinstance(payment_intent.get("last_payment_error") or {}, dict)
    ):
        return WebhookResult.MALFORMED
    metadata = payment_intent.get("metadata") or {}
    # `account` is set only on events of connected accounts (Connect): never a PaymentIntent of ours.
    if event.get("account") or metadata.get("app_id") != app_id or not metadata.get("order_id"):
        return WebhookResult.NOT_OURS
    attempt = str(metadata.get("attempt") or 1)
    if not (attempt.isascii() and attempt.isdigit() and len(attempt) <= 3):
        return WebhookResult.MALFORMED

    outcome = outcome_of(event_id, payment_intent, kind.status) if kind.resumes else None
    applied, item = payments.record_event(
        payment_intent["id"],
        event_id=event_id,
        created=created,
        status=kind.status,
        rank=kind.rank,
        outcome=outcome,
        terminal=kind.terminal,
        order_id=str(metadata["order_id"]),
        attempt=int(attempt),
        now=now,
    )
    if not kind.resumes:
        return WebhookResult.PROGRESS if applied else WebhookResult.DUPLICATE
    if item is None or item.get("outcomeEventId") != event_id:
        return WebhookResult.DUPLICATE  # a newer event decided this PaymentIntent
    token = item.get("taskToken")
    if not token:
        return WebhookResult.RECORDED
    if item.get("authorizedEventId") and kind.status != "requires_capture":
        # The task resumed with the authorisation (or timed out): what follows is the workflow's own capture or
        # release, and nothing waits for it.
        return WebhookResult.TOKEN_SPENT
    # Also on a duplicate delivery: the first one may have failed after recording.
    if task_tokens.resume(token, item["outcome"]):
        return WebhookResult.RESUMED
    # Paid or authorised, and no execution waits for it: only the reconciler can still complete it.
    if recover is not None and kind.status in ("succeeded", "requires_capture"):
        recover(payment_intent["id"])
    return WebhookResult.TOKEN_SPENT


# What a PaymentIntent's current state says happened to it, as the snapshot event Stripe would have sent.
STATE_EVENTS = {
    "succeeded": "payment_intent.succeeded",
    "canceled": "payment_intent.canceled",
    "processing": "payment_intent.processing",
    "requires_action": "payment_intent.requires_action",
    "requires_capture": "payment_intent.amount_capturable_updated",
}


def snapshot_of_thin_event(
    notification: dict[str, Any], fetch: Callable[[str], dict[str, Any] | None]
) -> dict[str, Any]:
    """A thin event (`v2.core.event`: a type and the related object's id, no snapshot) as the snapshot event
    handle_payment_event reads: the PaymentIntent fetched from Stripe now (one GET), so that Stripe's state,
    not the notification's type, is what is applied (docs.stripe.com/event-destinations#thin-payload).

    Ordering still holds when two fetches race: each is applied with its notification's `created`, the newer
    one wins, and a terminal state (succeeded, canceled) is never overwritten, whatever its fetch returned."""
    kind = str(notification.get("type") or "")
    related = notification.get("related_object")
    if not kind.startswith("v1.payment_intent.") or kind.removeprefix("v1.") not in EVENT_KINDS:
        return {"id": notification.get("id"), "object": "event", "type": kind}  # an ignored type
    related_id = related.get("id") if isinstance(related, dict) else None
    if not isinstance(related_id, str) or related.get("type") != "payment_intent":  # type: ignore[union-attr]
        return {"id": notification.get("id"), "object": "event", "type": kind.removeprefix("v1."), "data": None}
    payment_intent = fetch(related_id)
    if payment_intent is None:  # Stripe has no such PaymentIntent for our key: another account's, not ours
        payment_intent, state_event = {"id": related_id, "object": "payment_intent", "metadata": {}}, kind[3:]
    else:
        state = payment_intent.get("status")
        failed = state == "requires_payment_method" and payment_intent.get("last_payment_error")
        state_event = (
            "payment_intent.payment_failed" if failed else STATE_EVENTS.get(str(state), f"payment_intent.{state}")
        )
    return {
        "id": notification.get("id"),
        "object": "event",
        "type": state_event,
        "created": _unix_time(notification.get("created")),
        "account": (notification.get("context") or None),  # a connected account's: never ours
        "data": {"object": payment_intent},
    }


def _unix_time(created: Any) -> int | None:
    """A v2 event's `created`: an RFC 3339 timestamp."""
    try:
        return int(datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
