"""Stripe objects as the fake keeps and sends them: JSON dicts with Stripe's ids."""

import json
import secrets
import string
from typing import Any, NamedTuple

Obj = dict[str, Any]

API_VERSION = "2026-10-28.endive"  # _ApiVersion.CURRENT of the pinned stripe-python


class RequestRef(NamedTuple):
    """The API request behind an event (an event's `request` field); empty for the customer's or bank's doing."""

    id: str | None = None
    idempotency_key: str | None = None
    publishable: bool = False  # made with the publishable key (Stripe.js), not the secret key


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "_" + "".join(secrets.choice(alphabet) for _ in range(length))


def snapshot(obj: Obj) -> Obj:
    return json.loads(json.dumps(obj))


def dump(obj: Obj) -> bytes:
    return json.dumps(obj, indent=2).encode()
