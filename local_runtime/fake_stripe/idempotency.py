"""Stripe's idempotency layer for API v1 (https://docs.stripe.com/api/idempotent_requests,
https://docs.stripe.com/idempotency):

- the status and body of the first request with a key are saved once its endpoint begins, 4xx and 500
  included, and every retry with that key gets them back (`Idempotent-Replayed: true`); a `Rejected`
  request saves nothing (see errors.py);
- the same key with other parameters is a 400 `idempotency_error`;
- a key whose first request is still executing answers 409 `idempotency_key_in_use`; the body is the one
  Stripe sends, as quoted in https://github.com/beam-community/stripity-stripe/issues/564, and stripe-python
  retries a 409 when it has retries left (`_should_retry` in stripe/_http_client.py);
- "You can remove keys from the system automatically after they're at least 24 hours old. We generate a new
  request if a key is reused after the original is pruned": here, once `ttl_seconds` have passed on the
  fake's clock.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import Rejected

Scope = tuple[str, str, str]  # (API key, account, idempotency key)
Fingerprint = tuple[str, str, str]  # (method, path, parameters)


class Response(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Saved:
    fingerprint: Fingerprint
    response: Response
    saved_at: float


class IdempotencyKeys:
    def __init__(self, clock: Clock, ttl_seconds: float) -> None:
        self._clock, self.ttl_seconds = clock, ttl_seconds
        self._saved: dict[Scope, _Saved] = {}
        self._in_flight: set[Scope] = set()
        self._lock = threading.Lock()

    def run(self, scope: Scope, fingerprint: Fingerprint, execute: Callable[[], Response]) -> Response:
        """The saved response for this key, or `execute()`'s, saved unless it raised `Rejected`."""
        saved = self._claim(scope, fingerprint)
        if saved is not None:
            return saved.response._replace(headers={**saved.response.headers, "Idempotent-Replayed": "true"})
        response = None
        try:
            response = execute()
            return response
        finally:
            with self._lock:
                self._in_flight.discard(scope)
                if response is not None:
                    self._saved[scope] = _Saved(fingerprint, response, self._clock.now())

    def _claim(self, scope: Scope, fingerprint: Fingerprint) -> _Saved | None:
        key = scope[2]
        with self._lock:
            if scope in self._in_flight:
                raise Rejected(
                    409,
                    "There is currently another in-progress request using this Idempotent Key (that probably "
                    f"means you submitted twice, and the other request is still going through): {key}. "
                    "Please try again later.",
                    code="idempotency_key_in_use",
                )
            saved = self._saved.get(scope)
            if saved is not None and self._clock.now() - saved.saved_at >= self.ttl_seconds:
                del self._saved[scope]
                saved = None
            if saved is None:
                self._in_flight.add(scope)
            elif saved.fingerprint != fingerprint:
                raise Rejected(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            return saved
