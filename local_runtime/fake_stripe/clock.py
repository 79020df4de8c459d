"""The fake's notion of now, which tests can move forward."""

import time
from collections.abc import Callable


class Clock:
    """Real time unless stopped, plus whatever `advance` added.

    Every `created` the fake writes, idempotency-key expiry, the rate limiter and card authorizations' expiry read
    it, so that a test can say `fake.clock.advance(25 * 3600)` instead of waiting a day; `Clock(stopped_at=t)` moves
    only then, for tests that must not depend on how fast they run. `on_advance(callback)` runs `callback()` after
    each `advance`: what Stripe would have done on its own in the skipped time happens then (authorizations.py)."""

    def __init__(self, stopped_at: float | None = None) -> None:
        self._stopped_at = stopped_at
        self._offset = 0.0
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return (time.time() if self._stopped_at is None else self._stopped_at) + self._offset

    def timestamp(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> None:
        self._offset += seconds
        for listener in list(self._listeners):
            listener()

    def on_advance(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)
