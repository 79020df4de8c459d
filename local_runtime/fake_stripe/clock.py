"""The fake's notion of now, which tests can move forward."""

import time


class Clock:
    """Real time unless stopped, plus whatever `advance` added.

    Every `created` the fake writes, idempotency-key expiry and the rate limiter read it, so that a test can
    say `fake.clock.advance(25 * 3600)` instead of waiting a day; `Clock(stopped_at=t)` moves only then,
    for tests that must not depend on how fast they run."""

    def __init__(self, stopped_at: float | None = None) -> None:
        self._stopped_at = stopped_at
        self._offset = 0.0

    def now(self) -> float:
        return (time.time() if self._stopped_at is None else self._stopped_at) + self._offset

    def timestamp(self) -> int:
        return int(self.now())

    def advance(self, seconds: float) -> None:
        self._offset += seconds
