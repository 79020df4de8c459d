"""FakeStripe: the server, its Stripe account's objects and the switches tests turn."""

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Self
from urllib.parse import urlsplit

from local_runtime.fake_stripe.access import Keys
from local_runtime.fake_stripe.attempts import Attempts
from local_runtime.fake_stripe.authorizations import Authorizations
from local_runtime.fake_stripe.browser import Browser
from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.customers import Customers
from local_runtime.fake_stripe.delivery import EventDelivery
from local_runtime.fake_stripe.errors import ApiError, Rejected
from local_runtime.fake_stripe.eventbridge import DEFAULT_SOURCE, EventBridgeDestination, Publish
from local_runtime.fake_stripe.events import EventLog
from local_runtime.fake_stripe.faults import Fault, Faults
from local_runtime.fake_stripe.forms import parse_form
from local_runtime.fake_stripe.idempotency import IdempotencyKeys, Response
from local_runtime.fake_stripe.objects import Obj, RequestRef, dump, new_id
from local_runtime.fake_stripe.pages import Pages
from local_runtime.fake_stripe.payment_intents import PaymentIntents
from local_runtime.fake_stripe.payment_methods import PaymentMethods
from local_runtime.fake_stripe.rate_limit import RateLimiter
from local_runtime.fake_stripe.refunds import Refunds
from local_runtime.fake_stripe.sandbox import TestPaymentMethod
from local_runtime.fake_stripe.server import ApiServer, Handler, RecordedRequest
from local_runtime.fake_stripe.thin_events import ThinEvents
from local_runtime.fake_stripe.three_d_secure import Challenges, HostedPages
from local_runtime.fake_stripe.webhooks import WebhookEndpoint

log = logging.getLogger(__name__)

Endpoint = Callable[..., Obj]


class FakeStripe:
    """Stripe's API on 127.0.0.1 for one test account.

    `api_key` is the secret key (the merchant's server); `publishable_key` the one Stripe.js uses in the
    customer's browser (see access.py). `clock` dates every object and event, ages idempotency keys
    (`idempotency_key_ttl_seconds`, 24 h) and expires card holds (`capture_before`, authorizations.py), at the
    next request or as soon as a test advances it; `rate_limit_per_second` turns on Stripe's rate limiter (off by
    default), `endpoint_rate_limit_per_second` its limit per endpoint (rate_limit.py; local_runtime/quotas.py sets
    both at a scale); `async_settle_seconds` is how long bank debits stay processing (None: until `settle`). Tests read
    `payment_intents`, `payment_methods`, `customers`, `charges`, `refunds`, `events` (snapshot), `thin_events`,
    `requests` and `deliveries` (to every event destination), and turn the switches below."""

    def __init__(
        self,
        *,
        api_key: str = "sk_test_local",
        publishable_key: str = "pk_test_local",
        webhook_secret: str = "whsec_local",
        host: str = "127.0.0.1",
        port: int = 0,
        account: str = "acct_local",
        async_settle_seconds: float | None = 1.0,
        webhook_retry_backoff: tuple[float, ...] = (0.2, 0.5, 1.0),
        clock: Clock | None = None,
        idempotency_key_ttl_seconds: float = 24 * 3600,
        rate_limit_per_second: float | None = None,
        endpoint_rate_limit_per_second: float | None = None,
    ) -> None:
        self.api_key, self.publishable_key = api_key, publishable_key
        self.webhook_secret, self.account = webhook_secret, account
        self._keys = Keys(api_key, publishable_key)
        self.host, self.port, self.url = host, port, ""
        self.async_settle_seconds = async_settle_seconds
        self.clock = clock or Clock()
        self.requests: list[RecordedRequest] = []
        # Called with (method, path, raw body) as each API request reaches its endpoint, before it runs (after
        # authentication, rate limiting and the idempotency check): lets a test stage a race (the customer
        # paying the instant before a cancel lands) or hold a request in flight.
        self.before_request: Callable[[str, str, str], None] | None = None
        self._lock = threading.RLock()  # guards the account's objects
        self._delivery = EventDelivery(webhook_retry_backoff)
        self._thin_events = ThinEvents(self.clock)
        self._events = EventLog(self.clock, self._delivery, self._thin_events)
        self._customers = Customers(self.clock)
        self._methods = PaymentMethods(self.clock, self._customers)
        challenges = Challenges(lambda: self.url)
        self._authorizations = Authorizations(self.clock, self._events)
        attempts = Attempts(
            self.clock, self._events, self._methods, challenges, self._authorizations, self._schedule_settlement
        )
        self._payments = PaymentIntents(self.clock, self._events, self._methods, attempts, self._authorizations)
        self.clock.on_advance(self._expire_authorizations)
        self._pages = Pages(HostedPages(challenges, self._payments.payment_intents, self._payments.authenticated))
        self._refunds = Refunds(self.clock, self._events, self._payments)
        self._idempotency = IdempotencyKeys(self.clock, idempotency_key_ttl_seconds)
        self._rate_limiter = (
            RateLimiter(rate_limit_per_second, self.clock, endpoint_rate_limit_per_second)
            if rate_limit_per_second or endpoint_rate_limit_per_second
            else None
        )
        self._faults = Faults()
        self._timers: list[threading.Timer] = []
        self._server: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self.payment_intents, self.charges = self._payments.payment_intents, self._payments.charges
        self.payment_methods, self.customers = self._methods.payment_methods, self._customers.customers
        self.next_payment_intent_ids = self._payments.next_ids
        self.refunds, self.events = self._refunds.refunds, self._events.events
        self.thin_events = self._thin_events.events
        self.deliveries = self._delivery.deliveries
        self.set_delivery, self.release_held = self._delivery.set_delivery, self._delivery.release_held  # chaos
        self._routes: list[tuple[str, str, Endpoint]] = [
            ("POST", r"/v1/payment_intents", self._payments.create),
            ("GET", r"/v1/payment_intents", self._payments.list_all),
            ("GET", r"/v1/payment_intents/([^/]+)", self._payments.retrieve),
            ("POST", r"/v1/payment_intents/([^/]+)/confirm", self._payments.confirm),
            ("POST", r"/v1/payment_intents/([^/]+)/cancel", self._payments.cancel),
            ("POST", r"/v1/payment_intents/([^/]+)/capture", self._payments.capture),
            ("POST", r"/v1/payment_methods", self._methods.create),
            ("GET", r"/v1/payment_methods/([^/]+)", self._methods.retrieve),
            ("POST", r"/v1/payment_methods/([^/]+)/attach", self._methods.attach),
            ("POST", r"/v1/customers", self._customers.create),
            ("GET", r"/v1/customers/([^/]+)", self._customers.retrieve),
            ("POST", r"/v1/refunds", self._refunds.create),
            ("GET", r"/v1/refunds/([^/]+)", self._refunds.retrieve),
            ("GET", r"/v1/charges/([^/]+)", self._payments.retrieve_charge),
            ("GET", r"/v1/events", self._events.list_all),
            ("GET", r"/v1/events/([^/]+)", self._events.retrieve),
            ("GET", r"/v2/core/events/([^/]+)", self._thin_events.retrieve),
        ]

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        self._server = ApiServer((self.host, self.port), self._answer)
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._delivery.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-stripe-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._delivery.stop()
        for timer in self._timers:
            timer.cancel()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- test controls
    def add_webhook_endpoint(self, url: str, *, secret: str | None = None, payload: str = "snapshot") -> None:
        """An event destination that POSTs each event to `url`, signed with `secret` (default `webhook_secret`),
        as a snapshot `event` or as a thin `v2.core.event` (`payload="thin"`); see webhooks.py."""
        self._delivery.add(WebhookEndpoint(url, secret or self.webhook_secret, payload))

    def add_eventbridge_destination(
        self, publish: Publish, *, payload: str = "snapshot", source: str = DEFAULT_SOURCE
    ) -> None:
        """An Amazon EventBridge event destination: `publish` gets one PutEvents entry per event
        (`{"Source": source, "DetailType": event type, "Detail": the event as JSON, "Resources": []}`), from the
        delivery thread, and is retried like a failed webhook when it raises; see eventbridge.py."""
        self._delivery.add(EventBridgeDestination(publish, source, payload))

    def remove_destinations(self) -> None:
        """Disable every event destination (as deleting them in the Dashboard does); queued deliveries go on."""
        self._delivery.remove_all()

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until no delivery is queued or in flight (held/parked events don't count)."""
        self._delivery.wait(timeout)

    def complete_3ds(self, payment_intent_id: str, *, succeed: bool = True) -> None:
        """The customer passes (or fails) 3-D Secure in the browser, over HTTP as a browser would: Stripe.js
        fetches the PaymentIntent with the publishable key and its client_secret, and the customer presses
        "Complete" (or "Fail") on the hosted page its `next_action` points at. ValueError when the PaymentIntent
        is not (or no longer) waiting for 3-D Secure."""
        with self._lock:
            pi = self.payment_intents.get(payment_intent_id)
            client_secret = pi["client_secret"] if pi else None
        if client_secret is None:
            raise ValueError(f"no PaymentIntent {payment_intent_id}")
        Browser(self.url, self.publishable_key).authenticate(client_secret, complete=succeed)

    def add_customer(self, customer_id: str, *, email: str | None = None) -> None:
        """A Customer this account already has, under a known id (the samples' and fixtures' customers); Stripe
        itself refuses a PaymentIntent for a Customer it does not know."""
        with self._lock:
            self._customers.create({"email": email} if email else {}, RequestRef(), customer_id=customer_id)

    def settle(self, payment_intent_id: str, *, succeed: bool = True) -> None:
        """The bank settles a processing debit now."""
        with self._lock:
            self._payments.settle(payment_intent_id, succeed)

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int = 500,
        times: int = 1,
        after_commit: bool = False,
        reset_connection: bool = False,
        should_retry: bool | None = None,
        match: Callable[[str, str], bool] | None = None,
    ) -> Fault:
        """Fail the next `times` matching requests with a Stripe error or a TCP reset.

        `match(path, raw body)` narrows the fault to some requests (one order's, say). Returns the
        fault: setting its `times` to 0 withdraws it.

        With after_commit=True the request is fully processed (and its response saved for its
        idempotency key) before the failure is returned, so a retry gets the replay; without it the
        request fails before any endpoint begins, so nothing is saved and a retry runs afresh.
        `should_retry` sets the Stripe-Should-Retry header (default: not sent, so stripe-python
        retries 5xx and connection errors but not 429).
        """
        fault = Fault(method.upper(), path_prefix, status, times, after_commit, reset_connection, should_retry, match)
        return self._faults.add(fault)

    def limit_rate(self, requests_per_second: float | None) -> None:
        """Turn Stripe's rate limiter on from the next request, as `rate_limit_per_second` does from the start, with a
        full bucket; None turns it off."""
        self._rate_limiter = RateLimiter(requests_per_second, self.clock) if requests_per_second else None

    # ----------------------------------------------------------------- requests
    def _answer(self, h: Handler) -> None:
        url = urlsplit(h.path)
        raw = h.body()
        if not url.path.startswith(("/v1/", "/v2/")):
            with self._lock:
                page = self._pages.answer(h.command, url.path, url.query, raw)
            if page is not None:
                return h.respond(page)
        request_id = new_id("req", 14)
        ikey = h.headers.get("Idempotency-Key") if h.command == "POST" else None
        record = RecordedRequest(h.command, url.path, ikey, request_id=request_id)
        with self._lock:
            self.requests.append(record)
        fault = self._faults.take(h.command, url.path, raw)
        if fault is None or fault.after_commit:
            response = self._process(h, url.path, url.query, raw, RequestRef(request_id, ikey), record)
            record.status, record.replayed = response.status, response.headers.get("Idempotent-Replayed") == "true"
        if fault is None:
            h.respond(response)
        elif fault.reset_connection:
            record.status, record.fault = None, "reset"
            h.reset_connection()
        else:
            record.status, record.fault = fault.status, "error"
            h.respond(fault.response(request_id))

    def _process(
        self, h: Handler, path: str, query: str, raw: str, request: RequestRef, record: RecordedRequest
    ) -> Response:
        """Authenticate, rate-limit, validate and route the request, then run it once per idempotency key."""
        headers = {"Request-Id": str(request.id)}
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        try:
            params = parse_form(raw if h.command == "POST" else query)
            publishable = self._keys.authenticate(h.headers.get("Authorization"), params)
            request, record.publishable = request._replace(publishable=publishable), publishable
            account = h.headers.get("Stripe-Account") or self.account
            endpoint, args = self._route(h.command, path)
            if self._rate_limiter:
                self._rate_limiter.admit(account, f"{h.command} {endpoint.__qualname__}")
            if publishable:
                self._keys.admit_publishable(h.command, path, params)

            def execute() -> Response:
                """Run the endpoint: what it answers is saved for the key, errors too, unless `Rejected`."""
                if self.before_request is not None:
                    self.before_request(h.command, path, raw)
                try:
                    with self._lock:
                        self._authorizations.expire_due()  # what Stripe did on its own before this request
                        return Response(200, dump(endpoint(*args, params, request)), headers)
                except Rejected:
                    raise
                except ApiError as e:
                    return Response(e.status, e.body(), {**headers, **e.headers})
                except Exception:
                    log.exception("FakeStripe endpoint crashed")
                    return Response(500, ApiError(500, "Internal error", type="api_error").body(), headers)

            if not request.idempotency_key:
                return execute()
            scope = (self.publishable_key if publishable else self.api_key, account, request.idempotency_key)
            fingerprint = (h.command, path, json.dumps(params, sort_keys=True))
            return self._idempotency.run(scope, fingerprint, execute)
        except Rejected as e:
            return Response(e.status, e.body(), {**headers, **e.headers})

    def _route(self, method: str, path: str) -> tuple[Endpoint, tuple[str, ...]]:
        for route_method, pattern, endpoint in self._routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return endpoint, match.groups()
        raise Rejected(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/.",
        )

    # ----------------------------------------------------------------- Stripe and the bank, on their own time
    def _expire_authorizations(self) -> None:
        """Card holds whose `capture_before` the clock has passed expire (authorizations.py)."""
        with self._lock:
            self._authorizations.expire_due()

    def _schedule_settlement(self, pi_id: str, charge_id: str, pm: TestPaymentMethod) -> None:
        if self.async_settle_seconds is None:
            return
        timer = threading.Timer(
            self.async_settle_seconds * pm.settle_factor, self._settle_on_time, (pi_id, charge_id, pm.settles_ok)
        )
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _settle_on_time(self, pi_id: str, charge_id: str, succeed: bool) -> None:
        with self._lock:
            if self._payments.still_processing(pi_id, charge_id):
                self._payments.settle(pi_id, succeed)
