"""webhooks.handle_payment_event over real PaymentRecords (moto) and a fake Step Functions client."""

from datetime import UTC, datetime
from typing import Any

import pytest

from payments import steps
from payments.errors import AwsUnavailable
from payments.records import PaymentRecords
from payments.task_tokens import TaskTokens
from payments.webhooks import WebhookResult, handle_payment_event
from tests.unit._support import APP_ID, CREATED, FakeStepFunctions, payment_intent_event, unique

NOW = datetime(2024, 5, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def payments(dynamodb: Any, tables: dict[str, Any]) -> PaymentRecords:
    return PaymentRecords(dynamodb, "PaymentsTable")


@pytest.fixture
def sfn() -> FakeStepFunctions:
    return FakeStepFunctions()


@pytest.fixture
def handle(payments: PaymentRecords, sfn: FakeStepFunctions):  # type: ignore[no-untyped-def]
    def _handle(event: dict[str, Any]) -> WebhookResult:
        return handle_payment_event(event, app_id=APP_ID, payments=payments, task_tokens=TaskTokens(sfn), now=NOW)

    return _handle


@pytest.fixture
def register(payments: PaymentRecords, sfn: FakeStepFunctions):  # type: ignore[no-untyped-def]
    """The WaitForPaymentOutcome step: store the token, resume at once if an outcome came first."""

    def _register(payment_intent_id: str, token: str) -> str:
        return steps.register_task_token(
            payment_intent_id, token, payments=payments, task_tokens=TaskTokens(sfn), timeout_seconds=3600, now=NOW
        )

    return _register


def created_payment_intent(payments: PaymentRecords) -> str:
    """The CreatePaymentIntent step has recorded a new PaymentIntent."""
    payment_intent_id = unique("pi")
    payments.record_payment_intent(payment_intent_id, "order-1001", 1, "arn:exec", "requires_confirmation", NOW)
    return payment_intent_id


def all_items(tables: dict[str, Any]) -> list[dict[str, Any]]:
    return tables["PaymentsTable"].scan(ConsistentRead=True)["Items"]


def test_succeeded_with_token_stored_resumes_with_the_outcome(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    assert register(pi, "token-1") == "waiting"
    event = payment_intent_event("payment_intent.succeeded", pi)

    result = handle(event)

    assert result is WebhookResult.RESUMED
    assert sfn.resumed == [
        ("token-1", {
            "status": "succeeded", "paymentIntentId": pi, "eventId": event["id"],
            "failureCode": None, "declineCode": None, "failureMessage": None, "reason": "PaymentIntent succeeded",
            "retryable": False,
        })
    ]  # fmt: skip
    item = payments.get(pi)
    assert item is not None
    assert (item["status"], item["lastEventId"], item["terminalEventId"]) == ("succeeded", event["id"], event["id"])


def test_webhook_before_token_is_recorded_and_the_token_writer_resumes(handle, register, payments, sfn) -> None:
    # Given the webhook wins the race against WaitForPaymentOutcome
    pi = created_payment_intent(payments)
    event = payment_intent_event("payment_intent.succeeded", pi)
    assert handle(event) is WebhookResult.RECORDED
    assert sfn.calls == []

    # When the token is stored
    result = register(pi, "token-late")

    # Then the execution resumes with the outcome the webhook recorded: no lost wake-up
    assert result == "resumed"
    assert [(token, out["status"], out["eventId"]) for token, out in sfn.resumed] == [
        ("token-late", "succeeded", event["id"])
    ]


def test_webhook_before_the_payment_intent_is_even_recorded_still_resumes(handle, register, payments, sfn) -> None:
    # Given the webhook arrives before CreatePaymentIntent has written its record
    pi = unique("pi")
    assert handle(payment_intent_event("payment_intent.succeeded", pi)) is WebhookResult.RECORDED

    payments.record_payment_intent(pi, "order-1001", 1, "arn:exec", "requires_confirmation", NOW)

    assert payments.get(pi)["status"] == "succeeded"  # type: ignore[index]
    assert register(pi, "token-x") == "resumed"
    assert len(sfn.resumed) == 1


def test_token_first_then_webhook_resumes_exactly_once(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    assert register(pi, "token-2") == "waiting"

    assert handle(payment_intent_event("payment_intent.succeeded", pi)) is WebhookResult.RESUMED

    assert len(sfn.calls) == 1
    assert len(sfn.resumed) == 1


def test_early_webhook_then_token_resumes_exactly_once(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    event = payment_intent_event("payment_intent.succeeded", pi)
    assert handle(event) is WebhookResult.RECORDED
    assert register(pi, "token-3") == "resumed"

    # When Stripe redelivers the same event
    assert handle(event) is WebhookResult.TOKEN_SPENT

    assert len(sfn.resumed) == 1


def test_duplicate_succeeded_delivery_resends_and_answers_token_spent(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-4")
    event = payment_intent_event("payment_intent.succeeded", pi)
    assert handle(event) is WebhookResult.RESUMED

    # When the same event is delivered again (the fake answers TaskTimedOut for the spent token)
    result = handle(event)

    # Then the resend was attempted, and answered without an exception
    assert result is WebhookResult.TOKEN_SPENT
    assert [token for token, _ in sfn.calls] == ["token-4", "token-4"]
    assert len(sfn.resumed) == 1


def test_redelivery_after_a_failed_resume_resumes(handle, register, payments, sfn) -> None:
    # Given the first delivery recorded the outcome but SendTaskSuccess was throttled
    pi = created_payment_intent(payments)
    register(pi, "token-5")
    event = payment_intent_event("payment_intent.succeeded", pi)
    sfn.fail_next = ["ThrottlingException"]
    with pytest.raises(AwsUnavailable):
        handle(event)
    assert sfn.resumed == []

    # When Stripe retries the delivery
    assert handle(event) is WebhookResult.RESUMED
    assert len(sfn.resumed) == 1


def test_throttled_send_task_success_raises_aws_unavailable(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-6")
    sfn.fail_next = ["ThrottlingException"]

    with pytest.raises(AwsUnavailable, match="SendTaskSuccess"):
        handle(payment_intent_event("payment_intent.succeeded", pi))


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_spent_token_answers_token_spent(handle, register, payments, sfn, code: str) -> None:
    pi = created_payment_intent(payments)
    register(pi, f"token-{code}")
    sfn.fail_next = [code]

    assert handle(payment_intent_event("payment_intent.succeeded", pi)) is WebhookResult.TOKEN_SPENT


@pytest.mark.parametrize(
    ("event_type", "recovered"),
    [
        ("payment_intent.succeeded", True),
        ("payment_intent.amount_capturable_updated", True),
        ("payment_intent.payment_failed", False),
        ("payment_intent.canceled", False),
    ],
)
def test_a_payment_whose_execution_stopped_waiting_starts_the_reconciler(
    payments, register, sfn, event_type: str, recovered: bool
) -> None:
    # Given an execution that stopped waiting (timed out, parked past its budget, aborted) before the
    # outcome's webhook arrived: its token is spent
    pi = created_payment_intent(payments)
    register(pi, "token-gone")
    sfn.fail_next = ["TaskTimedOut"]
    started: list[str] = []

    result = handle_payment_event(
        payment_intent_event(event_type, pi), app_id=APP_ID, payments=payments, task_tokens=TaskTokens(sfn), now=NOW,
        recover=started.append,
    )  # fmt: skip

    # Then a paid one is handed to the reconciler (nothing else would fulfil or refund it); others are not
    assert result is WebhookResult.TOKEN_SPENT
    assert started == ([pi] if recovered else [])


def test_a_payment_whose_execution_resumed_starts_no_reconciler(payments, register, sfn) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-live")
    started: list[str] = []

    result = handle_payment_event(
        payment_intent_event("payment_intent.succeeded", pi), app_id=APP_ID, payments=payments,
        task_tokens=TaskTokens(sfn), now=NOW, recover=started.append,
    )  # fmt: skip

    assert (result, started) == (WebhookResult.RESUMED, [])


def test_older_processing_event_after_succeeded_is_duplicate(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-7")
    succeeded = payment_intent_event("payment_intent.succeeded", pi, created=CREATED + 10)
    assert handle(succeeded) is WebhookResult.RESUMED

    # When the processing event, created earlier, arrives late
    result = handle(payment_intent_event("payment_intent.processing", pi, created=CREATED))

    assert result is WebhookResult.DUPLICATE
    item = payments.get(pi)
    assert (item["status"], item["lastEventId"], item["outcome"]["status"]) == (  # type: ignore[index]
        "succeeded", succeeded["id"], "succeeded",
    )  # fmt: skip
    assert len(sfn.calls) == 1


def test_newer_payment_failed_after_succeeded_changes_nothing(handle, register, payments, sfn) -> None:
    # Succeeded is terminal: Stripe allows nothing after it, so nothing later may overwrite it
    pi = created_payment_intent(payments)
    register(pi, "token-8")
    succeeded = payment_intent_event("payment_intent.succeeded", pi, created=CREATED)
    handle(succeeded)

    result = handle(payment_intent_event("payment_intent.payment_failed", pi, created=CREATED + 60))

    assert result is WebhookResult.DUPLICATE
    assert payments.get(pi)["outcome"]["eventId"] == succeeded["id"]  # type: ignore[index]
    assert len(sfn.calls) == 1


def test_processing_in_same_second_as_payment_failed_does_not_overwrite(handle, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    failed = payment_intent_event("payment_intent.payment_failed", pi, created=CREATED)
    assert handle(failed) is WebhookResult.RECORDED

    result = handle(payment_intent_event("payment_intent.processing", pi, created=CREATED))

    assert result is WebhookResult.DUPLICATE
    item = payments.get(pi)
    assert (item["status"], item["lastEventId"]) == ("payment_failed", failed["id"])  # type: ignore[index]


def test_payment_failed_in_same_second_as_processing_is_applied(handle, payments) -> None:
    # The reverse order: the failure ranks above processing within one second
    pi = created_payment_intent(payments)
    assert handle(payment_intent_event("payment_intent.processing", pi, created=CREATED)) is WebhookResult.PROGRESS

    assert handle(payment_intent_event("payment_intent.payment_failed", pi, created=CREATED)) is WebhookResult.RECORDED
    assert payments.get(pi)["status"] == "payment_failed"  # type: ignore[index]


def test_succeeded_after_payment_failed_is_applied(handle, register, payments, sfn) -> None:
    # Given a failed attempt on the PaymentIntent, then a later success (the customer retried it)
    pi = created_payment_intent(payments)
    failed = payment_intent_event(
        "payment_intent.payment_failed", pi, created=CREATED,
        last_payment_error={"code": "card_declined", "decline_code": "generic_decline", "message": "declined"},
    )  # fmt: skip
    succeeded = payment_intent_event("payment_intent.succeeded", pi, created=CREATED + 30)
    assert handle(failed) is WebhookResult.RECORDED

    assert handle(succeeded) is WebhookResult.RECORDED

    item = payments.get(pi)
    assert (item["status"], item["outcomeEventId"], item["outcome"]["status"]) == (  # type: ignore[index]
        "succeeded", succeeded["id"], "succeeded",
    )  # fmt: skip
    # and the token writer resumes with the newer outcome, not the failure
    assert steps.register_task_token(
        pi, "token-9", payments=payments, task_tokens=TaskTokens(sfn), timeout_seconds=60, now=NOW
    ) == "resumed"  # fmt: skip
    assert sfn.resumed[0][1]["status"] == "succeeded"


def test_late_redelivery_of_superseded_payment_failed_does_not_resend(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    failed = payment_intent_event("payment_intent.payment_failed", pi, created=CREATED)
    handle(failed)
    handle(payment_intent_event("payment_intent.succeeded", pi, created=CREATED + 30))
    register(pi, "token-10")

    assert handle(failed) is WebhookResult.DUPLICATE
    assert [out["status"] for _, out in sfn.calls] == ["succeeded"]


def test_canceled_resumes_with_canceled_outcome(handle, register, payments, sfn) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-11")

    assert handle(payment_intent_event("payment_intent.canceled", pi)) is WebhookResult.RESUMED

    assert sfn.resumed[0][1]["status"] == "canceled"
    assert sfn.resumed[0][1]["retryable"] is False
    assert payments.get(pi)["status"] == "canceled"  # type: ignore[index]


@pytest.mark.parametrize("status", ["requires_action", "processing"])
def test_progress_events_are_recorded_and_do_not_resume(handle, register, payments, sfn, status: str) -> None:
    pi = created_payment_intent(payments)
    register(pi, f"token-{status}")

    result = handle(payment_intent_event(f"payment_intent.{status}", pi))

    assert result is WebhookResult.PROGRESS
    assert sfn.calls == []
    item = payments.get(pi)
    assert item["status"] == status  # type: ignore[index]
    assert "outcome" not in item  # type: ignore[operator]


@pytest.mark.parametrize(
    "event_type",
    ["charge.succeeded", "payment_intent.created", "customer.created", "", None],
    ids=["charge-succeeded", "pi-created", "customer-created", "empty", "none"],
)
def test_unknown_event_type_is_ignored_and_writes_nothing(handle, tables, sfn, event_type: Any) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["type"] = event_type

    assert handle(event) is WebhookResult.IGNORED_TYPE
    assert all_items(tables) == []


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"app_id": "someone-else", "order_id": "order-1001", "attempt": "1"}, id="other-app"),
        pytest.param({}, id="empty-metadata"),
        pytest.param(None, id="no-metadata"),
        pytest.param({"app_id": APP_ID, "attempt": "1"}, id="our-app-but-no-order"),
    ],
)
def test_payment_intent_not_ours_writes_nothing(handle, tables, sfn, metadata: Any) -> None:
    result = handle(payment_intent_event("payment_intent.succeeded", unique("pi"), metadata=metadata))

    assert result is WebhookResult.NOT_OURS
    assert all_items(tables) == []
    assert sfn.calls == []


def _without_data_object(event: dict[str, Any]) -> None:
    del event["data"]["object"]


def _without_data(event: dict[str, Any]) -> None:
    del event["data"]


def _object_is_a_charge(event: dict[str, Any]) -> None:
    event["data"]["object"]["object"] = "charge"


def _payment_intent_id_missing(event: dict[str, Any]) -> None:
    del event["data"]["object"]["id"]


def _event_id_missing(event: dict[str, Any]) -> None:
    del event["id"]


def _created_is_a_string(event: dict[str, Any]) -> None:
    event["created"] = str(CREATED)


def _created_is_a_float(event: dict[str, Any]) -> None:
    event["created"] = float(CREATED)


@pytest.mark.parametrize(
    "spoil",
    [
        _without_data_object, _without_data, _object_is_a_charge, _payment_intent_id_missing, _event_id_missing,
        _created_is_a_string, _created_is_a_float,
    ],
    ids=lambda f: f.__name__.strip("_"),
)  # fmt: skip
def test_malformed_event_writes_nothing(handle, tables, sfn, spoil) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    spoil(event)

    assert handle(event) is WebhookResult.MALFORMED
    assert all_items(tables) == []


@pytest.mark.parametrize("data", [["not", "an", "object"], "pi_123"], ids=["list", "string"])
def test_event_whose_data_is_not_an_object_is_malformed(handle, tables, data: Any) -> None:
    event = payment_intent_event("payment_intent.succeeded", unique("pi"))
    event["data"] = data

    assert handle(event) is WebhookResult.MALFORMED


@pytest.mark.parametrize(
    ("last_payment_error", "retryable"),
    [
        pytest.param(
            {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient "
             "funds."}, True, id="insufficient-funds",
        ),
        pytest.param(
            {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."},
            False, id="generic-decline",
        ),
        pytest.param({"code": "processing_error", "message": "try again"}, True, id="processing-error-code-only"),
        pytest.param({"code": "expired_card", "message": "expired"}, False, id="expired-card"),
        pytest.param(None, False, id="no-error-details"),
    ],
)  # fmt: skip
def test_payment_failed_outcome_says_whether_retryable(
    handle, register, payments, sfn, last_payment_error: Any, retryable: bool
) -> None:
    pi = created_payment_intent(payments)
    register(pi, "token-fail")

    result = handle(payment_intent_event("payment_intent.payment_failed", pi, last_payment_error=last_payment_error))

    assert result is WebhookResult.RESUMED
    outcome = sfn.resumed[0][1]
    assert outcome["status"] == "payment_failed"
    assert outcome["retryable"] is retryable
    error = last_payment_error or {}
    assert (outcome["failureCode"], outcome["declineCode"]) == (error.get("code"), error.get("decline_code"))


def test_retryable_code_on_a_succeeded_event_is_not_retryable(handle, register, payments, sfn) -> None:
    # A success may carry an earlier attempt's last_payment_error; only a failure is retryable
    pi = created_payment_intent(payments)
    register(pi, "token-s")

    declined = {"code": "card_declined", "decline_code": "insufficient_funds"}
    handle(payment_intent_event("payment_intent.succeeded", pi, last_payment_error=declined))

    assert sfn.resumed[0][1]["retryable"] is False


def test_attempt_and_order_come_from_metadata_when_webhook_is_first(handle, payments) -> None:
    pi = unique("pi")

    handle(payment_intent_event("payment_intent.processing", pi, order_id="order-77", attempt="3"))

    item = payments.get(pi)
    assert (item["orderId"], item["attempt"]) == ("order-77", 3)  # type: ignore[index]


def test_stored_token_outlives_the_task_timeout(register, payments) -> None:
    pi = created_payment_intent(payments)

    register(pi, "token-ttl")

    item = payments.get(pi)
    assert item["taskToken"] == "token-ttl"  # type: ignore[index]
    assert item["expiresAt"] == int(NOW.timestamp()) + 3600 + steps.TOKEN_TTL_MARGIN_SECONDS  # type: ignore[index]


def test_an_authorisation_resumes_the_execution_and_its_capture_starts_no_reconciler(
    handle, register, payments, sfn
) -> None:
    # CaptureMethod manual: Stripe sends payment_intent.amount_capturable_updated when the card is authorised
    # (docs.stripe.com/payments/place-a-hold-on-a-payment-method), then payment_intent.succeeded when the
    # workflow captures, after its task token was spent on the authorisation.
    pi = created_payment_intent(payments)
    register(pi, "token-1")
    started: list[str] = []

    def deliver(event_type: str, created: int) -> WebhookResult:
        return handle_payment_event(
            payment_intent_event(event_type, pi, created=created), app_id=APP_ID, payments=payments,
            task_tokens=TaskTokens(sfn), now=NOW, recover=started.append,
        )  # fmt: skip

    assert deliver("payment_intent.amount_capturable_updated", CREATED) is WebhookResult.RESUMED
    assert [outcome["status"] for _, outcome in sfn.resumed] == ["requires_capture"]
    assert deliver("payment_intent.succeeded", CREATED + 5) is WebhookResult.TOKEN_SPENT
    assert (len(sfn.calls), started) == (1, [])  # not even a SendTaskSuccess on the spent token
    # An authorisation delivered late, after its capture, changes nothing
    assert deliver("payment_intent.amount_capturable_updated", CREATED + 1) is WebhookResult.DUPLICATE
