"""Stripe's error responses (https://docs.stripe.com/api/errors), in two kinds that idempotency tells apart.

"Stripe saves the status code and body of the first request made with a given idempotency key after endpoint
execution begins ... If incoming parameters fail validation, or the request conflicts with another that was
executing concurrently, no idempotent result is saved because no API endpoint began execution."
(https://docs.stripe.com/api/idempotent_requests). So an `ApiError` (a decline, a PaymentIntent in the wrong
state) is saved and replayed for its key, and a `Rejected` request (bad parameters, bad API key, a key in
flight, a rate limit) is not: a retry with the same key runs afresh.
"""

from typing import Any

from local_runtime.fake_stripe.objects import Obj, dump


class ApiError(Exception):
    """An error answered by an endpoint that began executing: saved for the request's idempotency key."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.error: Obj = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param
        self.error.update(extra)

    def body(self) -> bytes:
        return dump({"error": self.error})


class Rejected(ApiError):
    """A request refused before any endpoint began: no idempotent result is saved."""


def missing(param: str) -> Rejected:
    return Rejected(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def exclusive(*params: str) -> Rejected:
    return Rejected(
        400, f"You may only specify one of these parameters: {', '.join(params)}.", code="parameters_exclusive"
    )


def find[T](table: dict[str, T], kind: str, ident: str, param: str = "id") -> T:
    """The object with this id, or Stripe's resource_missing: 404 for an id in the URL, 400 for a parameter."""
    if ident not in table:
        status = 404 if param in ("id", "intent") else 400
        raise ApiError(status, f"No such {kind}: '{ident}'", code="resource_missing", param=param)
    return table[ident]
