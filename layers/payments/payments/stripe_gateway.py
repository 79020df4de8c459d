"""The adapter between payment terms and Stripe's API (stripe-python's StripeClient).

Every write carries an idempotency key derived from the order and attempt, so a retry by
Lambda, by the state machine or by stripe-python itself can never create a second charge.

Every request Stripe receives from the stack, stripe-python's own retries and each page of a list included,
first takes a token from the shared request budget (payments.pacing), in the HTTP client stripe-python sends
it with. A 429 is retried here, briefly and with full jitter, and told apart (https://docs.stripe.com/rate-limits,
https://docs.stripe.com/error-codes): `rate_limit` means the account is over its limit, so the budget is paused for
everyone; `lock_timeout` means another request holds this object, so only this request tries again soon.
"""

import contextlib
import contextvars
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe

from payments.errors import PaymentRequestRejected, StripeBusy, StripeUnavailable
from payments.orders import Order, checkout_url
from payments.pacing import StripeBudget

# Statuses Stripe allows a PaymentIntent to be canceled from.
CANCELABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"})
# Waiting for the customer or for nothing: settling a failed or timed-out attempt cancels these. An authorised
# one (requires_capture) is the customer's money held for us: it is captured or released on purpose, not settled.
UNPAID = CANCELABLE - {"requires_capture"}


ALREADY_REFUNDED = "already_refunded"
# How long one Stripe call may wait, for its budget's tokens and between its 429 retries, before it gives up with
# StripeUnavailable (the state machine's Retry then waits longer, with full jitter). Far under every function's
# timeout (the webhook's is 10 s), so that giving up is an answer the caller handles, never a Lambda timeout.
MAX_WAIT_SECONDS = 3.0
SWEEP_MAX_WAIT_SECONDS = 60.0  # the reconciler's list of the last two days' events, page by page
# Full-jitter backoff between 429 retries: a random wait up to min(cap, base * 2 ** retry)
# (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
LOCK_TIMEOUT_BACKOFF = (0.1, 1.0)  # another request holds the object: it is usually done within a moment
RATE_LIMIT_BACKOFF = (0.5, 2.0)  # the account is over its limit: a second's worth of tokens refills in a second
RATE_LIMIT_PAUSE_SECONDS = 1.0  # how long a rate_limit 429 empties the shared budget for
_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("stripe_call_deadline")
# A token taken ahead (StripeGateway.token_first) that the next request spends instead of booking its own.
_prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar("stripe_token_prepaid", default=False)


@dataclass(frozen=True)
class PaymentIntentView:
    """What the workflow needs to know of a PaymentIntent."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: dict[str, str]
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    next_action: str | None = None  # what the customer must do: use_stripe_sdk, redirect_to_url, ...
    capture_before: int | None = None  # an authorisation's deadline (the latest charge's card details), if read
    cancellation_reason: str | None = None  # "expired": an authorisation that lapsed
    client_secret: str | None = field(default=None, repr=False)  # lets a browser confirm it: never logged or stored

    @classmethod
    def from_stripe(cls, payment_intent: Any) -> "PaymentIntentView":
        data = payment_intent.to_dict() if hasattr(payment_intent, "to_dict") else dict(payment_intent)
        error = data.get("last_payment_error") or {}
        return cls(
            id=data["id"],
            status=data["status"],
            amount=data.get("amount", 0),
            currency=data.get("currency", ""),
            metadata=dict(data.get("metadata") or {}),
            failure_code=error.get("code"),
            decline_code=error.get("decline_code"),
            failure_message=error.get("message"),
            next_action=(data.get("next_action") or {}).get("type"),
            capture_before=_capture_before(data.get("latest_charge")),
            cancellation_reason=data.get("cancellation_reason"),
            client_secret=data.get("client_secret"),
        )


def _capture_before(charge: Any) -> int | None:
    """`payment_method_details.card.capture_before` of an expanded charge
    (docs.stripe.com/api/charges/object#charge_object-payment_method_details-card-capture_before)."""
    if not isinstance(charge, dict):
        return None
    deadline = ((charge.get("payment_method_details") or {}).get("card") or {}).get("capture_before")
    return deadline if isinstance(deadline, int) else None


def payment_idempotency_key(order_id: str, attempt: int, generation: int = 1) -> str:
    """A new generation only once the last key may be spent: Stripe replays a stored 500 for as long as it
    keeps a key, and forgets keys after 24 hours (docs.stripe.com/api/idempotent_requests)."""
    key = f"{order_id}:attempt-{attempt}:create"
    return key if generation == 1 else f"{key}:{generation}"


class StripeGateway:
    # Quoted: evaluating stripe.StripeClient here would load the client and all its services (~20 ms) into
    # functions that only verify signatures (the webhook).
    def __init__(
        self, client: "stripe.StripeClient", app_id: str, checkout_page_url: str = "",
        capture_method: str = "automatic", budget: StripeBudget | None = None,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:  # fmt: skip
        self._client = client
        self._app_id = app_id
        self._checkout_page_url = checkout_page_url
        self._capture_method = capture_method
        self._budget = budget
        self._max_wait_seconds = max_wait_seconds

    @classmethod
    def connect(
        cls, api_key: str, api_base: str, network_retries: int, app_id: str, checkout_page_url: str = "",
        capture_method: str = "automatic", budget: StripeBudget | None = None,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> "StripeGateway":  # fmt: skip
        client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=network_retries,
            http_client=PacedRequestsClient(budget, max_wait_seconds) if budget else None,
        )
        return cls(client, app_id, checkout_page_url, capture_method, budget, max_wait_seconds)

    @contextlib.contextmanager
    def token_first(self) -> Iterator[None]:
        """Take the budget's token for the next Stripe request now, before the caller records that it asks Stripe.

        A spent budget then raises StripeUnavailable before anything is recorded, so that the step's Retry starts
        afresh instead of looking (a list request, a token per page) for a PaymentIntent that no request made: under
        a burst, that search would double a refused payment's share of the budget (docs/peak-load.md)."""
        if self._budget is None:
            yield
            return
        self._budget.take(max_wait=self._max_wait_seconds)
        bound = _prepaid.set(True)
        try:
            yield
        finally:
            _prepaid.reset(bound)

    def create_payment_intent(
        self, order: Order, attempt: int, execution_id: str, key_generation: int = 1
    ) -> PaymentIntentView:
        params: dict[str, Any] = {
            "amount": order.amount,
            "currency": order.currency,
            "metadata": {
                "app_id": self._app_id,
                "order_id": order.order_id,
                "attempt": str(attempt),
                "execution_id": execution_id,
            },
            "description": f"Order {order.order_id}",
        }
        if order.customer_id:
            params["customer"] = order.customer_id
        # On-session, the customer's browser confirms with Stripe.js and the client_secret; with a payment
        # method in the order it is confirmed here, and whatever needs the customer (3-D Secure, a redirect,
        # another card) is handed to the checkout page the same way. Off-session, nobody can authenticate.
        params["automatic_payment_methods"] = {"enabled": True}
        if self._capture_method == "manual":
            # Cards authorise now and capture once the stock is reserved; methods that cannot be captured later
            # (bank debits) keep the automatic capture (docs.stripe.com/payments/place-a-hold-on-a-payment-method).
            params["payment_method_options"] = {"card": {"capture_method": "manual"}}
        if order.payment_method:
            params.update(payment_method=order.payment_method, confirm=True)
            return_url = None if order.off_session else checkout_url(self._checkout_page_url, order.order_id)
            if order.off_session:
                params["off_session"] = True
            if return_url:
                params["return_url"] = return_url
            else:  # a redirect needs somewhere to come back to (docs.stripe.com/api/payment_intents/create)
                params["automatic_payment_methods"]["allow_redirects"] = "never"
        options: stripe.RequestOptions = {
            "idempotency_key": payment_idempotency_key(order.order_id, attempt, key_generation)
        }
        return self._confirmation(lambda: self._client.v1.payment_intents.create(params, options))

    def confirm_off_session(self, payment_intent_id: str, payment_method: str, attempt: int) -> PaymentIntentView:
        """Charge the saved card again, on the same PaymentIntent, while the customer is away.

        A PaymentIntent back in requires_payment_method after a decline can be confirmed again
        (docs.stripe.com/api/payment_intents/confirm); a card saved to the customer may be reused.
        """
        params: dict[str, Any] = {"payment_method": payment_method, "off_session": True}
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:confirm:attempt-{attempt}"}
        return self._confirmation(lambda: self._client.v1.payment_intents.confirm(payment_intent_id, params, options))

    def find_payment_intent(self, order_id: str, attempt: int, created_since: int) -> PaymentIntentView | None:
        """The attempt's PaymentIntent if a request created one that nobody recorded (its answer was lost)."""

        def search() -> PaymentIntentView | None:
            listed = self._client.v1.payment_intents.list({"created": {"gte": created_since}, "limit": 100})
            for payment_intent in listed.auto_paging_iter():
                view = PaymentIntentView.from_stripe(payment_intent)
                if (view.metadata.get("app_id"), view.metadata.get("order_id"), view.metadata.get("attempt")) == (
                    self._app_id, order_id, str(attempt),
                ):  # fmt: skip
                    return view
            return None

        return self._call(search)

    def paid_or_authorised(self, since: int) -> list[tuple[PaymentIntentView, int]]:
        """This deployment's PaymentIntents that succeeded, or were authorised (CaptureMethod manual), since
        `since`, each as its event had it with the event's time, from Stripe's events (kept 30 days:
        docs.stripe.com/api/events/list). An authorisation's snapshot may be stale: it may have been captured or
        released since."""

        def listing() -> list[tuple[PaymentIntentView, int]]:
            types = ["payment_intent.succeeded", "payment_intent.amount_capturable_updated"]
            events = self._client.v1.events.list({"types": types, "created": {"gte": since}, "limit": 100})
            return [(PaymentIntentView.from_stripe(e.data.object), int(e.created)) for e in events.auto_paging_iter()]

        # Many pages, each taking its token: the reconciler (a 300 s timeout) may wait longer than a payment's step.
        listed = self._call(listing, max_wait_seconds=SWEEP_MAX_WAIT_SECONDS)
        return [(view, at) for view, at in listed if view.metadata.get("app_id") == self._app_id]

    def payment_intent_data(self, payment_intent_id: str) -> dict[str, Any] | None:
        """The PaymentIntent as Stripe's JSON has it (what a snapshot event carries); None when Stripe has none
        by that id for this account."""

        def retrieve() -> dict[str, Any] | None:
            try:
                return dict(self._client.v1.payment_intents.retrieve(payment_intent_id).to_dict())
            except stripe.InvalidRequestError as missing:
                if missing.code == "resource_missing":
                    return None
                raise

        return self._call(retrieve)

    def authorization(self, payment_intent_id: str) -> PaymentIntentView:
        """The PaymentIntent with its latest charge, whose card details carry the authorisation's deadline."""
        params: dict[str, Any] = {"expand": ["latest_charge"]}
        return PaymentIntentView.from_stripe(
            self._call(lambda: self._client.v1.payment_intents.retrieve(payment_intent_id, params))
        )

    def capture(self, payment_intent_id: str) -> PaymentIntentView:
        """Capture the whole authorised amount (docs.stripe.com/api/payment_intents/capture)."""
        # Once whatever the retries: Stripe captures only a PaymentIntent in requires_capture, and refuses a second
        # capture with payment_intent_unexpected_state. A key per call, as for cancel: a key fixed per
        # PaymentIntent would replay a stored 500 or 400 to every later capture for 24 hours.
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:capture:{uuid.uuid4().hex}"}
        return PaymentIntentView.from_stripe(
            self._call(lambda: self._client.v1.payment_intents.capture(payment_intent_id, {}, options))
        )

    def retrieve(self, payment_intent_id: str) -> PaymentIntentView:
        return PaymentIntentView.from_stripe(
            self._call(lambda: self._client.v1.payment_intents.retrieve(payment_intent_id))
        )

    def cancel(self, payment_intent_id: str, reason: str) -> PaymentIntentView:
        # A key per call: a cancel that lost a race stores Stripe's 400 under its key, and a key fixed per
        # PaymentIntent would replay that 400 to every later cancel for 24 hours.
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:cancel:{uuid.uuid4().hex}"}
        params: dict[str, Any] = {"cancellation_reason": reason}
        return PaymentIntentView.from_stripe(
            self._call(lambda: self._client.v1.payment_intents.cancel(payment_intent_id, params, options))
        )

    def refund(self, payment_intent_id: str, reason: str) -> str:
        """Refund the whole PaymentIntent once, whatever the retries. Returns the refund id."""
        # One key per reason: the same key with other metadata is an idempotency_error; a second refund of the
        # same charge for another reason is refused by Stripe as charge_already_refunded.
        options: stripe.RequestOptions = {"idempotency_key": f"{payment_intent_id}:refund:{reason}"}
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "metadata": {"app_id": self._app_id, "reason": reason},
        }

        def create() -> str:
            try:
                return str(self._client.v1.refunds.create(params, options).id)
            except stripe.InvalidRequestError as rejected:
                if rejected.code == "charge_already_refunded":  # by an earlier call whose key Stripe forgot
                    return ALREADY_REFUNDED
                raise

        return self._call(create)

    def _confirmation(self, request: Callable[[], Any]) -> PaymentIntentView:
        """A decline is an outcome, not an error: the PaymentIntent exists, back in requires_payment_method, and
        its payment_intent.payment_failed webhook resumes the workflow like any other outcome."""
        try:
            return PaymentIntentView.from_stripe(self._call(request))
        except stripe.CardError as declined:
            payment_intent = declined.error.payment_intent if declined.error else None
            if payment_intent is None:
                raise PaymentRequestRejected(str(declined.user_message or declined)) from declined
            return PaymentIntentView.from_stripe(payment_intent)

    def _call[T](self, request: Callable[[], T], max_wait_seconds: float | None = None) -> T:
        """Run one Stripe request (a list: its pages), retrying its 429s and waiting for its tokens for up to
        `max_wait_seconds` in all (the gateway's, by default), then StripeUnavailable.

        A retry repeats the request with its idempotency key: Stripe saves no result for a request that conflicted
        with another one or never began executing (docs.stripe.com/api/idempotent_requests), so the retry is the
        request's first run, never a second charge."""
        deadline = time.monotonic() + (max_wait_seconds or self._max_wait_seconds)
        bound = _deadline.set(deadline)
        retry = 0
        try:
            while True:
                try:
                    return _translated(request)
                except stripe.RateLimitError as limited:
                    reason, should_retry = _limit_reason(limited)
                    if reason == "rate_limit" and self._budget is not None:
                        self._budget.pause(RATE_LIMIT_PAUSE_SECONDS)
                    base, cap = LOCK_TIMEOUT_BACKOFF if reason == "lock_timeout" else RATE_LIMIT_BACKOFF
                    delay = random.uniform(0, min(cap, base * 2**retry))
                    if should_retry is False or time.monotonic() + delay > deadline:
                        busy = StripeBusy if reason == "rate_limit" else StripeUnavailable
                        raise busy(f"Stripe answered 429 {reason}: {limited.user_message}") from limited
                    time.sleep(delay)
                    retry += 1
        finally:
            _deadline.reset(bound)


class PacedRequestsClient(stripe.RequestsClient):
    """stripe-python's default HTTP client (HTTPClient is its documented base for custom clients), taking a token
    from the shared budget before each request it sends: stripe-python's own retries, and every page of a list."""

    def __init__(self, budget: StripeBudget, max_wait_seconds: float) -> None:
        super().__init__()
        self._budget, self._max_wait_seconds = budget, max_wait_seconds

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if _prepaid.get():
            _prepaid.set(False)  # StripeGateway.token_first took this request's token
        else:
            deadline = _deadline.get(time.monotonic() + self._max_wait_seconds)
            self._budget.take(max_wait=max(0.0, deadline - time.monotonic()))
        return super().request(method, url, headers, post_data)


def _limit_reason(limited: stripe.RateLimitError) -> tuple[str, bool | None]:
    """Which 429 this is: stripe-python raises RateLimitError for every 429 and leaves the code in the error object.
    Returns (`lock_timeout` | `rate_limit` | the code Stripe gave, whether Stripe-Should-Retry says to retry)."""
    code = (limited.error.code if limited.error else None) or limited.code or "rate_limit"
    header = next((v for k, v in (limited.headers or {}).items() if k.lower() == "stripe-should-retry"), None)
    return str(code), None if header is None else header == "true"


def _translated[T](request: Callable[[], T]) -> T:
    """Run one Stripe request, turning Stripe's errors into the workflow's typed errors (a 429 is the caller's)."""
    try:
        return request()
    except (stripe.CardError, stripe.RateLimitError):
        raise
    except (stripe.APIConnectionError, stripe.APIError) as transient:
        raise StripeUnavailable(str(transient.user_message or transient)) from transient
    except (stripe.AuthenticationError, stripe.PermissionError, stripe.IdempotencyError) as ours:
        # A key rotated or restricted, or a key of ours misused: never the order's fault, never definitive.
        raise StripeUnavailable(f"{type(ours).__name__}: {ours.user_message or ours}") from ours
    except stripe.StripeError as rejected:
        if (rejected.http_status or 0) >= 500:
            raise StripeUnavailable(str(rejected.user_message or rejected)) from rejected
        raise PaymentRequestRejected(str(rejected.user_message or rejected)) from rejected
