"""Typed domain errors. Their class names are the error names the state machine's Retry and Catch match."""


class PaymentError(Exception):
    """Base class: the message says what happened in payment terms."""


class InvalidOrder(PaymentError):
    """The start input is not a payable order. Not retryable."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DuplicateOrder(PaymentError):
    """Another execution holds this order: one order is one payment. Nothing is changed."""


class OrderAlreadyStarted(PaymentError):
    """The merchant API was asked to start an order whose execution exists with another input, or has ended."""


class StripeUnavailable(PaymentError):
    """Stripe could not be reached, or answered 5xx, 429, 409 or 401. Never definitive: the state machine
    retries, then parks; a rejected API key during a key rotation is ours to fix, not the order's fault."""


class StripeBusy(StripeUnavailable):
    """No Stripe request may be made for now: the stack's request budget is spent, or Stripe answered 429
    `rate_limit`. Not an outage but a queue: the state machine retries it longer and more patiently than an
    outage (its own Retry, with full jitter), so that a burst waits its turn instead of parking."""


class PaymentRequestRejected(PaymentError):
    """Stripe refused the request itself (not a card decline). Not retryable."""


class AwsUnavailable(PaymentError):
    """An AWS call was throttled or failed on the service side. Transient."""


class PaymentNotConfirmed(PaymentError):
    """Stripe does not confirm the outcome the workflow was resumed with. Nothing is fulfilled."""


class PaymentNotBound(PaymentError):
    """A succeeded PaymentIntent that is not the one bound to its order's attempt: nothing is fulfilled with it.
    The workflow never holds one (CreatePaymentIntent returns the bound one); the reconciler refunds such a
    payment as a stray."""


class OutOfStock(PaymentError):
    """A line item cannot be reserved. The payment is refunded."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"not enough stock for SKU {sku}")
        self.sku = sku


class AuthorizationExpired(PaymentError):
    """An authorised payment can no longer be captured: its authorisation expired, or was released before its
    deadline so that it would not lapse silently. Nothing is charged; the stock reserved for it is released."""


class OrderNotFound(PaymentError):
    """The orders table has no record for this order id."""


class OrderAlreadyFulfilled(PaymentError):
    """The order was fulfilled (its fulfilment committed, then its step failed): it must not be refunded."""
