"""The local fake Stripe, driven by the real stripe-python client over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe

PI = "/v1/payment_intents"


class WebhookReceiver:
    """A tiny HTTP endpoint that records every webhook POST (optionally failing the first few)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.received.append((dict(self.headers), body))
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= failing
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in list(self.received)]

    def types(self, pi_id: str | None = None) -> list[str]:
        return [
            e["type"]
            for e in self.events()
            if pi_id is None or pi_id in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def fake(receiver: WebhookReceiver) -> Iterator[FakeStripe]:
    with FakeStripe(async_settle_seconds=0.2, webhook_retry_backoff=(0.05, 0.1, 0.2)) as f:
        f.add_webhook_endpoint(receiver.url)
        yield f


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url}, max_network_retries=2)


def create(
    client: stripe.StripeClient, pm: str | None = None, key: str | None = None, **extra: Any
) -> stripe.PaymentIntent:
    params: dict[str, Any] = {"amount": 2500, "currency": "eur", "metadata": {"order_id": "ord_1"}}
    if pm:
        params.update(payment_method=pm, confirm=True)
    params.update(extra)
    return client.v1.payment_intents.create(params, {"idempotency_key": key} if key else None)


def raw_request(
    fake: FakeStripe, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        fake.url + path, data=body.encode() if method == "POST" else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ------------------------------------------------------------------ payment method outcomes


@pytest.mark.parametrize("pm", ["pm_card_visa", "pm_card_mastercard"])
def test_card_succeeds(fake: FakeStripe, client: stripe.StripeClient, receiver: WebhookReceiver, pm: str) -> None:
    pi = create(client, pm, automatic_payment_methods={"enabled": True}, expand=["latest_charge"])
    assert (pi.status, pi.amount_received, pi.payment_method) == ("succeeded", 2500, pm)
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
    assert pi.status == "requires_action" and pi.next_action.type == "use_stripe_sdk"
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


# ------------------------------------------------------------------ idempotency


def test_idempotent_replay(fake: FakeStripe, client: stripe.StripeClient) -> None:
    first = create(client, "pm_card_visa", key="order-1-attempt-1")
    again = create(client, "pm_card_visa", key="order-1-attempt-1")
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(fake.payment_intents) == 1 and len(fake.events) == 3
    assert [r.replayed for r in fake.requests] == [False, True]


def test_idempotent_replay_of_a_decline(fake: FakeStripe, client: stripe.StripeClient) -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            create(client, "pm_card_chargeDeclined", key="decline-key")
        errors.append(exc.value)
    assert errors[0].json_body == errors[1].json_body
    assert errors[1].headers.get("Idempotent-Replayed") == "true"
    assert len(fake.payment_intents) == 1


def test_idempotency_error_on_changed_parameters(fake: FakeStripe, client: stripe.StripeClient) -> None:
    create(client, key="k1")
    with pytest.raises(stripe.IdempotencyError) as exc:
        create(client, key="k1", amount=9999)
    assert exc.value.http_status == 400 and exc.value.error.type == "idempotency_error"
    assert len(fake.payment_intents) == 1


def test_concurrent_requests_with_one_key_create_one_payment_intent(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        ids.append(create(client, "pm_card_visa", key="same-key").id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(fake.payment_intents) == 1
    assert sum(r.replayed for r in fake.requests) == 7


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
