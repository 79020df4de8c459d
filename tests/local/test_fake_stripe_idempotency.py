"""The fake's idempotency keys, pinned to Stripe's rules (https://docs.stripe.com/api/idempotent_requests):
what is saved and replayed, what is not, a key in flight, and keys forgotten after 24 hours."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from tests.local._support import client_of, create, wait_until


def test_idempotent_replay(fake: FakeStripe, client: stripe.StripeClient) -> None:
    first = create(client, "pm_card_visa", key="order-1-attempt-1")
    again = create(client, "pm_card_visa", key="order-1-attempt-1")
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(fake.payment_intents) == 1 and len(fake.events) == 3
    assert [r.replayed for r in fake.requests] == [False, True]


def test_a_decline_is_saved_and_replayed(fake: FakeStripe, client: stripe.StripeClient) -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            create(client, "pm_card_chargeDeclined", key="decline-key")
        errors.append(exc.value)
    assert errors[0].json_body == errors[1].json_body
    assert errors[1].headers.get("Idempotent-Replayed") == "true"
    assert len(fake.payment_intents) == 1


def test_a_refused_cancel_is_saved_and_replayed(fake: FakeStripe, client: stripe.StripeClient) -> None:
    paid = create(client, "pm_card_visa")
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.payment_intents.cancel(paid.id, options={"idempotency_key": f"{paid.id}:cancel"})
        errors.append(exc.value)
    assert [(e.http_status, e.code) for e in errors] == [(400, "payment_intent_unexpected_state")] * 2
    assert errors[0].json_body == errors[1].json_body
    assert errors[1].headers.get("Idempotent-Replayed") == "true"


def test_a_saved_400_outlives_the_state_that_caused_it(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, "pm_usBankAccount_processing")

    def confirm(key: str) -> stripe.PaymentIntent:
        return client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"}, {"idempotency_key": key})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        confirm("retry-1")  # still processing
    fake.settle(pi.id, succeed=False)  # confirmable again
    with pytest.raises(stripe.InvalidRequestError) as replayed:
        confirm("retry-1")
    assert replayed.value.json_body == refused.value.json_body
    assert replayed.value.headers.get("Idempotent-Replayed") == "true"
    assert fake.payment_intents[pi.id]["status"] == "requires_payment_method"
    assert confirm("retry-2").status == "succeeded"


def test_parameters_that_fail_validation_save_nothing(fake: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, key="order-1", amount=0)
    assert exc.value.code == "parameter_invalid_integer"
    pi = create(client, key="order-1")  # other parameters, same key: no idempotency_error, it runs
    assert "Idempotent-Replayed" not in pi.last_response.headers
    assert list(fake.payment_intents) == [pi.id]


def test_an_unauthenticated_request_saves_nothing(fake: FakeStripe, client: stripe.StripeClient) -> None:
    stranger = stripe.StripeClient("sk_test_someone_else_123", base_addresses={"api": fake.url})
    with pytest.raises(stripe.AuthenticationError):
        create(stranger, "pm_card_visa", key="order-1")
    pi = create(client, "pm_card_visa", key="order-1")
    assert "Idempotent-Replayed" not in pi.last_response.headers and pi.status == "succeeded"


def test_idempotency_error_on_changed_parameters(fake: FakeStripe, client: stripe.StripeClient) -> None:
    create(client, key="k1")
    with pytest.raises(stripe.IdempotencyError) as exc:
        create(client, key="k1", amount=9999)
    assert exc.value.http_status == 400 and exc.value.error.type == "idempotency_error"
    assert len(fake.payment_intents) == 1


def _hold_first_request(fake: FakeStripe, until: threading.Event | None = None) -> threading.Event:
    """Keep the first request to reach its endpoint in flight until `until` is set (or a 409 was answered)."""
    in_flight = threading.Event()

    def hold(method: str, path: str, raw: str) -> None:
        if in_flight.is_set():
            return
        in_flight.set()
        if until is not None:
            assert until.wait(5)
        else:
            wait_until(lambda: any(r.status == 409 for r in fake.requests))

    fake.before_request = hold
    return in_flight


def test_a_key_in_flight_answers_409(fake: FakeStripe) -> None:
    client = client_of(fake, max_network_retries=0)
    finish = threading.Event()
    in_flight = _hold_first_request(fake, until=finish)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(create, client, "pm_card_visa", "order-1")
        assert in_flight.wait(5)
        with pytest.raises(stripe.APIError) as exc:
            create(client, "pm_card_visa", key="order-1")
        finish.set()
        paid = first.result(5)
    assert exc.value.http_status == 409
    assert (exc.value.error.type, exc.value.error.code) == ("invalid_request_error", "idempotency_key_in_use")
    assert "another in-progress request using this Idempotent Key" in str(exc.value.user_message)
    assert list(fake.payment_intents) == [paid.id]
    assert create(client, "pm_card_visa", key="order-1").id == paid.id  # finished: now replayed


def test_stripe_python_retries_a_409_into_the_saved_result(fake: FakeStripe, client: stripe.StripeClient) -> None:
    in_flight = _hold_first_request(fake)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(create, client, "pm_card_visa", "order-1")
        assert in_flight.wait(5)
        second = create(client, "pm_card_visa", key="order-1")
        assert first.result(5).id == second.id
    assert list(fake.payment_intents) == [second.id]
    assert [(r.status, r.replayed) for r in fake.requests] == [(200, False), (409, False), (200, True)]


def test_concurrent_requests_with_one_key_create_one_payment_intent(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    barrier = threading.Barrier(8)

    def pay() -> str:
        barrier.wait()
        return create(client, "pm_card_visa", key="same-key").id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: pay(), range(8)))
    assert len(set(ids)) == 1 and list(fake.payment_intents) == ids[:1]
    executed = [r for r in fake.requests if r.status == 200 and not r.replayed]
    assert len(executed) == 1 and sum(r.replayed for r in fake.requests) == 7
    assert {r.status for r in fake.requests} <= {200, 409}


def test_a_key_is_forgotten_after_24_hours_and_then_charges_again(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    first = create(client, "pm_card_visa", key="order-1:attempt-1")
    fake.clock.advance(23 * 3600)
    assert create(client, "pm_card_visa", key="order-1:attempt-1").id == first.id
    fake.clock.advance(2 * 3600)
    second = create(client, "pm_card_visa", key="order-1:attempt-1")
    assert second.id != first.id and "Idempotent-Replayed" not in second.last_response.headers
    assert [pi["status"] for pi in fake.payment_intents.values()] == ["succeeded", "succeeded"]
    assert second.created - first.created >= 25 * 3600
    assert fake.events[-1]["created"] == second.created


def test_the_key_lifetime_is_configurable() -> None:
    with FakeStripe(idempotency_key_ttl_seconds=60) as fake:
        client = client_of(fake)
        first = create(client, key="order-1")
        fake.clock.advance(61)
        later = create(client, key="order-1", amount=9999)  # forgotten: other parameters are no error
        assert later.id != first.id and later.amount == 9999
