"""The fake's list endpoints, pinned to https://docs.stripe.com/api/pagination,
https://docs.stripe.com/api/payment_intents/list and https://docs.stripe.com/api/events/list, walked by
stripe-python's own `auto_paging_iter()`."""

from typing import Any

import pytest
import stripe

from local_runtime.fake_stripe import FakeStripe
from tests.local._support import PI, client_of, create


def test_payment_intents_are_listed_newest_first_ten_a_page(fake: FakeStripe, client: stripe.StripeClient) -> None:
    newest_first = [create(client).id for _ in range(12)][::-1]
    page = client.v1.payment_intents.list()
    assert (page.object, page.url, page.has_more) == ("list", PI, True)
    assert [pi.id for pi in page.data] == newest_first[:10]
    assert [pi.id for pi in page.auto_paging_iter()] == newest_first
    assert [r.path for r in fake.requests if r.method == "GET"] == [PI, PI]


def test_cursors_and_limits(fake: FakeStripe, client: stripe.StripeClient) -> None:
    ids = [create(client).id for _ in range(5)][::-1]

    def listed(**params: Any) -> tuple[list[str], bool]:
        page = client.v1.payment_intents.list(params)  # type: ignore[arg-type]
        return [pi.id for pi in page.data], page.has_more

    assert listed(limit=2, starting_after=ids[1]) == (ids[2:4], True)
    assert listed(limit=2, starting_after=ids[3]) == (ids[4:], False)
    assert listed(limit=2, ending_before=ids[3]) == (ids[1:3], True)
    assert listed(limit=2, ending_before=ids[1]) == (ids[:1], False)
    assert listed(limit=100) == (ids, False)
    for params, code in [
        ({"limit": 101}, "parameter_invalid_integer"),
        ({"limit": 0}, "parameter_invalid_integer"),
        ({"starting_after": ids[0], "ending_before": ids[4]}, "parameters_exclusive"),
        ({"starting_after": "pi_unknown"}, "resource_missing"),
        ({"colour": "red"}, "parameter_unknown"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            listed(**params)
        assert (exc.value.http_status, exc.value.code) == (400, code), params


def test_payment_intents_by_customer_and_created(fake: FakeStripe, client: stripe.StripeClient) -> None:
    cus_a, cus_b = (client.v1.customers.create().id for _ in range(2))
    first = create(client, customer=cus_a)
    fake.clock.advance(3600)
    second, third = create(client, customer=cus_b), create(client, customer=cus_a)

    def listed(**params: Any) -> list[str]:
        return [pi.id for pi in client.v1.payment_intents.list(params).data]  # type: ignore[arg-type]

    assert listed(customer=cus_a) == [third.id, first.id]
    assert listed(created={"gt": first.created}) == [third.id, second.id]
    assert listed(created={"lte": first.created}) == [first.id]
    assert listed(created={"gte": second.created, "lt": third.created + 1}) == [third.id, second.id]
    assert listed(created=first.created) == [first.id]


def test_the_reconcilers_query_walks_every_page_of_recent_successes() -> None:
    with FakeStripe(async_settle_seconds=None) as fake:
        client = client_of(fake)
        create(client, "pm_card_visa")  # an hour before the window
        fake.clock.advance(3600)
        since = fake.clock.timestamp()
        paid = [create(client, "pm_card_visa").id for _ in range(130)]
        with pytest.raises(stripe.CardError):
            create(client, "pm_card_chargeDeclined")
        events = client.v1.events.list(
            {"type": "payment_intent.succeeded", "created": {"gte": since}, "limit": 100}
        ).auto_paging_iter()
        assert [event.data.object.id for event in events] == paid[::-1]
        assert [r.path for r in fake.requests if r.method == "GET"] == ["/v1/events", "/v1/events"]


def test_events_by_type_pattern_and_types(fake: FakeStripe, client: stripe.StripeClient) -> None:
    pi = create(client, "pm_card_visa")

    def types(**params: Any) -> list[str]:
        return [event.type for event in client.v1.events.list(params).data]  # type: ignore[arg-type]

    assert types() == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]
    assert types(type="payment_intent.*") == ["payment_intent.succeeded", "payment_intent.created"]
    assert types(types=["charge.succeeded", "payment_intent.created"]) == ["charge.succeeded", "payment_intent.created"]
    assert client.v1.events.list({"type": "payment_intent.succeeded"}).data[0].data.object.id == pi.id
    with pytest.raises(stripe.InvalidRequestError) as exc:
        types(type="charge.succeeded", types=["charge.succeeded"])
    assert exc.value.code == "parameters_exclusive"


def test_events_are_kept_for_30_days(fake: FakeStripe, client: stripe.StripeClient) -> None:
    create(client, "pm_card_visa")
    event_id = fake.events[-1]["id"]
    fake.clock.advance(29 * 24 * 3600)
    assert len(client.v1.events.list().data) == 3
    assert client.v1.events.retrieve(event_id).type == "payment_intent.succeeded"
    fake.clock.advance(2 * 24 * 3600)
    assert client.v1.events.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.events.retrieve(event_id)
    assert (exc.value.http_status, exc.value.code) == (404, "resource_missing")
