"""Stripe's list endpoints (https://docs.stripe.com/api/pagination): a list object
`{"object": "list", "data": [...], "has_more": ..., "url": ...}`, newest first; `limit` "ranging between 1 and
100", 10 by default; `starting_after` / `ending_before` cursors, one or the other; and a `created` filter that
is a timestamp or a dictionary of `gt`, `gte`, `lt`, `lte`. That is what stripe-python's `auto_paging_iter()`
walks, page after page."""

import operator
from collections.abc import Callable

from local_runtime.fake_stripe.errors import exclusive, find
from local_runtime.fake_stripe.forms import check_known, to_integer
from local_runtime.fake_stripe.objects import Obj, snapshot

LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_COMPARISONS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def list_page(
    kind: str,
    url: str,
    oldest_first: list[Obj],
    params: Obj,
    filters: tuple[str, ...] = (),
    keep: Callable[[Obj], bool] = lambda obj: True,
) -> Obj:
    """One page of the objects that `keep` (reading the endpoint's own `filters`) and `created` let through."""
    check_known(params, LIST_PARAMS | set(filters), {"created": set(_COMPARISONS)})
    limit = to_integer(params.get("limit", "10"), "limit", minimum=1, maximum=100)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise exclusive("ending_before", "starting_after")
    newest_first = oldest_first[::-1]
    position = {obj["id"]: i for i, obj in enumerate(newest_first)}
    in_range = _created_filter(params)

    def matching(objects: list[Obj]) -> list[Obj]:
        return [obj for obj in objects if in_range(obj["created"]) and keep(obj)]

    if before:
        earlier = matching(newest_first[: find(position, kind, before, "ending_before")])
        data, has_more = earlier[-limit:], len(earlier) > limit
    else:
        start = find(position, kind, after, "starting_after") + 1 if after else 0
        later = matching(newest_first[start:])
        data, has_more = later[:limit], len(later) > limit
    return {"object": "list", "data": [snapshot(obj) for obj in data], "has_more": has_more, "url": url}


def _created_filter(params: Obj) -> Callable[[int], bool]:
    created = params.get("created")
    if created is None:
        return lambda when: True
    if not isinstance(created, dict):
        at = to_integer(created, "created")
        return lambda when: when == at
    bounds = [(_COMPARISONS[name], to_integer(bound, f"created[{name}]")) for name, bound in created.items()]
    return lambda when: all(compare(when, bound) for compare, bound in bounds)
