"""Thin events (docs.stripe.com/event-destinations#thin-payload): a notification names the PaymentIntent, the
handler reads its current state from Stripe, and that state goes the snapshot events' one path."""

from datetime import UTC, datetime
from typing import Any

import pytest

from payments import steps
from payments.records import PaymentRecords
from payments.task_tokens import TaskTokens
from payments.webhooks import WebhookResult, handle_stripe_event
from tests.unit._support import APP_ID, FakeStepFunctions, payment_intent_event, unique

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def thin_event(event_type: str, payment_intent_id: str, created: str = "2026-11-30T12:00:00.000Z") -> dict[str, Any]:
    """A v2 thin event as Stripe delivers it: the type and the related object, no snapshot."""
    return {
        "id": unique("evt"),
        "object": "v2.core.event",
        "type": event_type,
        "livemode": False,
        "created": created,
        "related_object": {
            "id": payment_intent_id,
            "type": "payment_intent",
            "url": f"/v1/payment_intents/{payment_intent_id}",
        },  # fmt: skip
        "reason": None,
        "context": None,
    }


class StripeNow:
    """The PaymentIntents as Stripe has them now (what a fetch returns), built from Stripe's example objects."""

    def __init__(self) -> None:
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.fetches: list[str] = []

    def set(self, event_type: str, payment_intent_id: str, **changes: Any) -> None:
        self.payment_intents[payment_intent_id] = payment_intent_event(event_type, payment_intent_id, **changes)[
            "data"
        ]["object"]

    def fetch(self, payment_intent_id: str) -> dict[str, Any] | None:
        self.fetches.append(payment_intent_id)
        return self.payment_intents.get(payment_intent_id)


@pytest.fixture
def payments(dynamodb: Any, tables: dict[str, Any]) -> PaymentRecords:
    return PaymentRecords(dynamodb, "PaymentsTable")


@pytest.fixture
def sfn() -> FakeStepFunctions:
    return FakeStepFunctions()


@pytest.fixture
def stripe_now() -> StripeNow:
    return StripeNow()


@pytest.fixture
def handle(payments, sfn, stripe_now):  # type: ignore[no-untyped-def]
    def _handle(event: dict[str, Any]) -> WebhookResult:
        return handle_stripe_event(
            event, app_id=APP_ID, payments=payments, task_tokens=TaskTokens(sfn), now=NOW,
            fetch_payment_intent=stripe_now.fetch,
        )  # fmt: skip

    return _handle


def waiting(payments: PaymentRecords, sfn: FakeStepFunctions, token: str) -> str:
    payment_intent_id = unique("pi")
    payments.record_payment_intent(payment_intent_id, "order-1001", 1, "arn:exec", "requires_payment_method", NOW)
    steps.register_task_token(
        payment_intent_id, token, payments=payments, task_tokens=TaskTokens(sfn), timeout_seconds=60, now=NOW
    )
    return payment_intent_id


def test_a_thin_event_resumes_with_stripes_current_state(handle, payments, sfn, stripe_now) -> None:
    pi = waiting(payments, sfn, "token-thin")
    stripe_now.set("payment_intent.succeeded", pi)

    assert handle(thin_event("v1.payment_intent.succeeded", pi)) is WebhookResult.RESUMED

    ((token, outcome),) = sfn.resumed
    assert (token, outcome["status"], outcome["paymentIntentId"]) == ("token-thin", "succeeded", pi)
    assert stripe_now.fetches == [pi]


def test_stripes_state_wins_over_the_notifications_type(handle, payments, sfn, stripe_now) -> None:
    # Given a late payment_failed notification for a PaymentIntent the customer has since paid
    pi = waiting(payments, sfn, "token-late")
    stripe_now.set("payment_intent.succeeded", pi)

    handle(thin_event("v1.payment_intent.payment_failed", pi))

    assert [outcome["status"] for _, outcome in sfn.resumed] == ["succeeded"]


def test_two_fetches_racing_keep_the_newer_outcome(handle, payments, sfn, stripe_now) -> None:
    # Given the succeeded notification is handled first, and a slow handler of the older decline fetched
    # the PaymentIntent while it was still declined
    pi = waiting(payments, sfn, "token-race")
    stripe_now.set("payment_intent.succeeded", pi)
    assert handle(thin_event("v1.payment_intent.succeeded", pi, "2026-11-30T12:00:05Z")) is WebhookResult.RESUMED
    stripe_now.set("payment_intent.payment_failed", pi, last_payment_error={"code": "card_declined"})

    # When the older decline is applied with what it fetched
    result = handle(thin_event("v1.payment_intent.payment_failed", pi, "2026-11-30T12:00:01Z"))

    # Then the terminal success stands: nothing resumed again, nothing overwritten
    assert result is WebhookResult.DUPLICATE
    assert payments.get(pi)["status"] == "succeeded"
    assert len(sfn.resumed) == 1


def test_a_thin_event_for_another_accounts_payment_intent_is_not_ours(handle, tables, stripe_now) -> None:
    assert handle(thin_event("v1.payment_intent.succeeded", "pi_someone_elses")) is WebhookResult.NOT_OURS
    assert tables["PaymentsTable"].scan()["Items"] == []


@pytest.mark.parametrize("event_type", ["v1.charge.succeeded", "v1.payment_intent.created", "v2.core.account.updated"])
def test_thin_events_of_other_types_are_ignored_without_a_fetch(handle, stripe_now, event_type: str) -> None:
    assert handle(thin_event(event_type, "pi_any")) is WebhookResult.IGNORED_TYPE
    assert stripe_now.fetches == []


def test_a_thin_event_without_a_payment_intent_is_malformed(handle, stripe_now) -> None:
    event = {**thin_event("v1.payment_intent.succeeded", "pi_any"), "related_object": {"type": "charge"}}

    assert handle(event) is WebhookResult.MALFORMED
    assert stripe_now.fetches == []
