"""API failures a test asks for: Stripe errors or a TCP reset, before or after the request takes effect."""

import threading
from collections.abc import Callable
from dataclasses import dataclass

from local_runtime.fake_stripe.errors import ApiError
from local_runtime.fake_stripe.idempotency import Response
from local_runtime.fake_stripe.rate_limit import rate_limited


@dataclass
class Fault:
    method: str
    path_prefix: str
    status: int
    times: int  # set to 0 to withdraw the fault
    after_commit: bool
    reset_connection: bool
    should_retry: bool | None
    match: Callable[[str, str], bool] | None = None  # (path, raw body) -> whether this request fails

    def response(self, request_id: str) -> Response:
        """The error this fault answers with; a 429 that Stripe says to retry is a lock_timeout."""
        if self.status == 429 and self.should_retry:
            error = ApiError(
                429,
                "This object cannot be accessed right now because another API request or Stripe process is "
                "currently accessing it. If you see this error intermittently, retry the request.",
                code="lock_timeout",
            )
        elif self.status == 429:
            error = rate_limited()
        else:
            error = ApiError(self.status, "An unknown error occurred (injected by FakeStripe).", type="api_error")
        headers = {"Request-Id": request_id}
        if self.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if self.should_retry else "false"
        return Response(self.status, error.body(), headers)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, raw: str) -> Fault | None:
        """The first fault armed for this request, one of its `times` used up."""
        with self._lock:
            fault = next(
                (
                    f
                    for f in self._faults
                    if f.times > 0
                    and f.method == method
                    and path.startswith(f.path_prefix)
                    and (f.match is None or f.match(path, raw))
                ),
                None,
            )
            if fault:
                fault.times -= 1
                self._faults = [f for f in self._faults if f.times > 0]
            return fault
