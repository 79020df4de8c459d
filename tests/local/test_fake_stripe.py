"""The local fake Stripe, driven by the real stripe-python client over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from tests.local._support import PI, WebhookReceiver, create, raw_request, wait_until

# ------------------------------------------------------------------ payment method outcomes


@pytest.mark.parametrize("pm", ["pm_card_visa", "pm_card_mastercard"])
def test_card_succeeds(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver, pm: str) -> None:
    pi = create(client, pm, automatic_payment_methods={"enabled": True}, expand=["latest_charge"])
    assert (pi.status, pi.amount_received) == ("succeeded", 2500)
    assert pi.payment_method.startswith("pm_") and pi.payment_method != pm  # a test id mints a new PaymentMethod
    assert pi.id.startswith("pi_") and pi.latest_charge.id.startswith("ch_")
    assert pi.metadata.to_dict() == {"order_id": "ord_1"} and pi.livemode is False
    assert pi.client_secret.startswith(pi.id + "_secret_")
    assert pi.last_response.headers["Request-Id"].startswith("req_")
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


@pytest.mark.parametrize(
    ("pm", "decline_code"),
    [("pm_card_chargeDeclined", "generic_decline"), ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_card_declined(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver, pm: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as exc:
        create(client, pm)
    err = exc.value
    assert (err.http_status, err.code, err.error.decline_code) == (402, "card_declined", decline_code)
    failed = err.error.payment_intent
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.decline_code == decline_code
    assert fake.payment_intents[failed.id]["status"] == "requires_payment_method"
    fake.wait_for_deliveries()
    assert receiver.types(failed.id) == ["payment_intent.created", "payment_intent.payment_failed"]


def test_no_payment_method_then_confirm(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = create(client)
    assert pi.status == "requires_payment_method" and pi.latest_charge is None
    pi = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[0] == "payment_intent.created"
    assert receiver.types(pi.id)[-1] == "payment_intent.succeeded"


@pytest.mark.parametrize("succeed", [True, False])
def test_3ds(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver, succeed: bool) -> None:
    pi = create(client, "pm_card_authenticationRequired", return_url="https://example.com/done")
    assert pi.status == "requires_action" and pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://example.com/done"
    fake.complete_3ds(pi.id, succeed=succeed)
    pi = client.v1.payment_intents.retrieve(pi.id)
    fake.wait_for_deliveries()
    if succeed:
        assert pi.status == "succeeded"
        assert receiver.types(pi.id)[-1] == "payment_intent.succeeded"
    else:
        assert pi.status == "requires_payment_method"
        assert pi.last_payment_error.code == "payment_intent_authentication_failure"
        assert receiver.types(pi.id)[-1] == "payment_intent.payment_failed"
    assert "payment_intent.requires_action" in receiver.types(pi.id)


@pytest.mark.parametrize(
    ("pm", "final", "last_event"),
    [
        ("pm_success_de", "succeeded", "payment_intent.succeeded"),
        ("pm_failed_de", "requires_payment_method", "payment_intent.payment_failed"),
        ("pm_usBankAccount_success", "succeeded", "payment_intent.succeeded"),
        ("pm_usBankAccount_insufficientFunds", "requires_payment_method", "payment_intent.payment_failed"),
    ],
)
def test_async_bank_debit_settles_by_itself(
    client: stripe.StripeClient, receiver: WebhookReceiver, pm: str, final: str, last_event: str
) -> None:
    pi = create(client, pm)
    assert pi.status == "processing"
    wait_until(lambda: last_event in receiver.types(pi.id))
    assert receiver.types(pi.id)[:2] == ["payment_intent.created", "payment_intent.processing"]
    assert client.v1.payment_intents.retrieve(pi.id).status == final


def test_settle_now(fake: FakeStripe, client: stripe.StripeClient) -> None:
    ok = create(client, "pm_usBankAccount_processing", payment_method_types=["us_bank_account"])
    bad = create(client, "pm_usBankAccount_processing")
    fake.settle(ok.id)
    fake.settle(bad.id, succeed=False)
    assert client.v1.payment_intents.retrieve(ok.id).status == "succeeded"
    bad = client.v1.payment_intents.retrieve(bad.id)
    assert bad.status == "requires_payment_method" and bad.last_payment_error is not None


def test_cancel(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = create(client)
    pi = client.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "abandoned"})
    assert (pi.status, pi.cancellation_reason) == ("canceled", "abandoned")
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[-1] == "payment_intent.canceled"
    done = create(client, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.cancel(done.id)
    assert (exc.value.http_status, exc.value.code) == (400, "payment_intent_unexpected_state")


def test_refund(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    pi = create(client, "pm_card_visa")
    refund = client.v1.refunds.create(
        {"payment_intent": pi.id, "reason": "requested_by_customer", "metadata": {"why": "test"}}
    )
    assert refund.id.startswith("re_") and (refund.status, refund.amount) == ("succeeded", 2500)
    assert client.v1.refunds.retrieve(refund.id).charge == pi.latest_charge
    assert fake.charges[pi.latest_charge]["refunded"] is True
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[-1] == "charge.refunded"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert exc.value.code == "charge_already_refunded"


# ------------------------------------------------------------------ errors


def test_authentication(fake: FakeStripe) -> None:
    bad = stripe.StripeClient("sk_test_wrong_key_123", base_addresses={"api": fake.url})
    with pytest.raises(stripe.AuthenticationError) as exc:
        bad.v1.payment_intents.retrieve("pi_123")
    assert exc.value.http_status == 401
    status, body = raw_request(fake, "GET", PI + "/pi_123")
    assert status == 401 and body["error"]["type"] == "invalid_request_error"


def test_invalid_requests(fake: FakeStripe, client: stripe.StripeClient) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"amount": 100, "currency": "eur", "colour": "red"}, "parameter_unknown", "colour"),
        (
            {"amount": 100, "currency": "eur", "automatic_payment_methods": {"enabled": True, "x": 1}},
            "parameter_unknown",
            "automatic_payment_methods[x]",
        ),
        ({"currency": "eur"}, "parameter_missing", "amount"),
        ({"amount": 100}, "parameter_missing", "currency"),
        ({"amount": 100_000_000, "currency": "eur"}, "amount_too_large", "amount"),
        ({"amount": 0, "currency": "eur"}, "parameter_invalid_integer", "amount"),
        ({"amount": "12.5", "currency": "eur"}, "parameter_invalid_integer", "amount"),
        (
            {"amount": 100, "currency": "eur", "payment_method": "pm_nope", "confirm": True},
            "resource_missing",
            "payment_method",
        ),
    ]
    for params, code, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.payment_intents.create(params)  # type: ignore[arg-type]
        assert (exc.value.http_status, exc.value.code, exc.value.param) == (400, code, param), params
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.retrieve("pi_missing")
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
    assert fake.payment_intents == {} and fake.events == []


# ------------------------------------------------------------------ webhooks


def test_webhook_signature_and_headers(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = create(client, "pm_card_visa", key="sig-key")
    fake.wait_for_deliveries()
    headers, body = receiver.received[-1]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], fake.webhook_secret)
    assert event.type == "payment_intent.succeeded" and event.data.object.id == pi.id
    assert event.request.idempotency_key == "sig-key" and event.livemode is False
    assert event.api_version and event.pending_webhooks == 1
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_wrong")


def test_webhook_endpoint_secret_and_retries(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    other = WebhookReceiver()
    try:
        fake.add_webhook_endpoint(other.url, secret="whsec_other")
        other.fail_first = 2
        create(client)
        fake.wait_for_deliveries()
        attempts = [(d.attempt, d.status) for d in fake.deliveries if d.url == other.url]
        assert attempts == [(1, 500), (2, 500), (3, 200)]
        headers, body = other.received[-1]
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    finally:
        other.close()


def test_duplicate_delivery(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    fake.set_delivery(duplicate=2)
    pi = create(client)
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == ["payment_intent.created"] * 3
    assert len({e["id"] for e in receiver.events()}) == 1


def test_reorder_delivers_the_outcome_before_processing(
    fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    fake.set_delivery(reorder=True)
    pi = create(client, "pm_usBankAccount_processing")
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == []  # parked until the outcome
    fake.settle(pi.id)
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == [
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_intent.processing",
        "payment_intent.created",
    ]


def test_drop(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    fake.set_delivery(drop=lambda event: event["type"] == "payment_intent.succeeded")
    pi = create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert receiver.types(pi.id) == ["payment_intent.created", "charge.succeeded"]
    assert [d.error for d in fake.deliveries if d.type == "payment_intent.succeeded"] == ["dropped"]


def test_hold_and_release(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    fake.set_delivery(hold=True)
    pi = create(client, "pm_card_visa")
    fake.wait_for_deliveries()
    assert receiver.received == []
    fake.set_delivery()
    fake.release_held()
    fake.wait_for_deliveries()
    assert receiver.types(pi.id)[-1] == "payment_intent.succeeded"


def test_delay(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver) -> None:
    fake.set_delivery(delay_seconds=0.3)
    started = time.monotonic()
    create(client)
    wait_until(lambda: len(receiver.received) == 1)
    assert time.monotonic() - started >= 0.3


# ------------------------------------------------------------------ fault injection


def test_500_is_retried_by_the_client(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next("POST", PI, status=500)
    pi = create(client, "pm_card_visa")
    assert pi.status == "succeeded" and list(fake.payment_intents) == [pi.id]
    assert [(r.status, r.fault) for r in fake.requests] == [(500, "error"), (200, None)]
    assert fake.requests[0].idempotency_key == fake.requests[1].idempotency_key  # auto-generated


@pytest.mark.parametrize("reset", [False, True])
def test_failure_after_commit_is_healed_by_the_replay(
    fake: FakeStripe, client: stripe.StripeClient, reset: bool
) -> None:
    fake.fail_next("POST", PI, after_commit=True, reset_connection=reset)
    pi = create(client, "pm_card_visa")
    assert pi.status == "succeeded" and list(fake.payment_intents) == [pi.id]
    assert [r.fault for r in fake.requests] == ["reset" if reset else "error", None]
    assert fake.requests[1].replayed and len(fake.events) == 3


def test_rate_limit_is_not_retried_unless_stripe_says_so(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next("POST", PI, status=429)
    with pytest.raises(stripe.RateLimitError):
        create(client)
    assert len(fake.requests) == 1 and fake.payment_intents == {}
    fake.fail_next("POST", PI, status=429, should_retry=True)  # a lock_timeout
    create(client)
    assert len(fake.requests) == 3 and len(fake.payment_intents) == 1
