"""A local, in-memory fake of the slice of Stripe's HTTP API this project uses.

The unmodified stripe-python client talks to it over real HTTP::

    with FakeStripe() as fake:
        client = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url},
                                     max_network_retries=2)
        client.v1.payment_intents.create({"amount": 1000, "currency": "eur", ...})

It models PaymentIntents, charges, refunds and events with Stripe's object shapes,
error JSON, status codes and idempotency semantics, delivers signed webhooks from a
background thread, and offers switches for webhook chaos (duplicates, reordering,
drops, holds) and API faults (500/429 or a TCP reset, before or after the commit).
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import heapq
import hmac
import json
import logging
import re
import secrets
import socket
import string
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

Obj = dict[str, Any]

API_VERSION = "2026-10-28.endive"  # _ApiVersion.CURRENT of the pinned stripe-python
MAX_AMOUNT = 99_999_999
WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
TERMINAL_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
)


@dataclass(frozen=True)
class TestPaymentMethod:
    """Behaviour of one of Stripe's documented test PaymentMethod ids."""

    type: str  # card | sepa_debit | us_bank_account
    outcome: str  # succeed | decline | authenticate | async
    decline_code: str | None = None  # decline: card decline code; async: failure code
    settles_ok: bool | None = None  # async: final outcome; None = stays processing
    settle_factor: float = 1.0  # async: multiple of async_settle_seconds
    brand: str = "visa"
    last4: str = "4242"


_async_fail = "payment_intent_payment_attempt_failed"
TEST_PAYMENT_METHODS: dict[str, TestPaymentMethod] = {
    "pm_card_visa": TestPaymentMethod("card", "succeed"),
    "pm_card_mastercard": TestPaymentMethod("card", "succeed", brand="mastercard", last4="4444"),
    "pm_card_chargeDeclined": TestPaymentMethod("card", "decline", "generic_decline", last4="0002"),
    "pm_card_visa_chargeDeclined": TestPaymentMethod("card", "decline", "generic_decline", last4="0002"),
    "pm_card_chargeDeclinedInsufficientFunds": TestPaymentMethod("card", "decline", "insufficient_funds", last4="9995"),
    "pm_card_authenticationRequired": TestPaymentMethod("card", "authenticate", last4="3184"),
    "pm_card_threeDSecure2Required": TestPaymentMethod("card", "authenticate", last4="3220"),
    # SEPA Direct Debit (DE test IBANs): processing -> succeeded / requires_payment_method
    "pm_success_de": TestPaymentMethod("sepa_debit", "async", settles_ok=True, last4="3000"),
    "pm_successDelayed_de": TestPaymentMethod("sepa_debit", "async", settles_ok=True, settle_factor=3, last4="3003"),
    "pm_failed_de": TestPaymentMethod("sepa_debit", "async", _async_fail, False, last4="3001"),
    "pm_failedDelayed_de": TestPaymentMethod("sepa_debit", "async", _async_fail, False, settle_factor=3, last4="3004"),
    "pm_insufficientFunds_de": TestPaymentMethod("sepa_debit", "async", "insufficient_funds", False, last4="2227"),
    # ACH Direct Debit
    "pm_usBankAccount_success": TestPaymentMethod("us_bank_account", "async", settles_ok=True, last4="6789"),
    "pm_usBankAccount_accountClosed": TestPaymentMethod(
        "us_bank_account", "async", "account_closed", False, last4="1113"
    ),
    "pm_usBankAccount_noAccount": TestPaymentMethod("us_bank_account", "async", "no_account", False, last4="1116"),
    "pm_usBankAccount_insufficientFunds": TestPaymentMethod(
        "us_bank_account", "async", "insufficient_funds", False, last4="2227"
    ),
    "pm_usBankAccount_debitNotAuthorized": TestPaymentMethod(
        "us_bank_account", "async", "debit_not_authorized", False, last4="3335"
    ),
    "pm_usBankAccount_processing": TestPaymentMethod("us_bank_account", "async", last4="0009"),
}

ERROR_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
    _async_fail: "The latest payment attempt of this PaymentIntent has failed.",
    "payment_intent_authentication_failure": "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
}

PI_CONFIRM_PARAMS = {"payment_method", "return_url", "off_session", "receipt_email", "expand"}
PI_CREATE_PARAMS = PI_CONFIRM_PARAMS | {"amount", "currency", "customer", "confirm", "metadata", "description"}
PI_CREATE_PARAMS |= {
    "automatic_payment_methods",
    "payment_method_types",
    "capture_method",
    "statement_descriptor_suffix",
}


class ApiError(Exception):
    """A Stripe error response. `store` marks errors kept for idempotent replay."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        store: bool = False,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.store, self.headers = status, store, headers or {}
        self.error: Obj = {"type": type, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param
        self.error.update(extra)


def _missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _no_such(kind: str, ident: str, param: str) -> ApiError:
    return ApiError(
        404 if param in ("id", "intent") else 400, f"No such {kind}: '{ident}'", code="resource_missing", param=param
    )


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "_" + "".join(secrets.choice(alphabet) for _ in range(length))


# --------------------------------------------------------------------------- form bodies

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(body: str) -> Obj:
    """Decode Stripe's form encoding (``a[b]=1``, ``list[0]=x``, ``list[]=x``) to nested values."""
    root: Obj = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise ApiError(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            part = part or str(len(node))  # "list[]" appends
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ApiError(400, f"Invalid object for parameter: {key}", param=key)
                node = child
    return {k: v if k == "metadata" else _listify(v) for k, v in root.items()}


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    value = {k: _listify(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def _check_known(params: Obj, allowed: set[str], nested: dict[str, set[str]] | None = None) -> None:
    """Reject parameters Stripe would not know, as Stripe does (400 parameter_unknown)."""
    names = list(params)
    for key, known in (nested or {}).items():
        if isinstance(params.get(key), dict):
            names += [f"{key}[{sub}]" for sub in params[key] if sub not in known]
    for name in names:
        if name not in allowed:
            raise ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def _bool(params: Obj, name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise ApiError(400, f"Invalid boolean: {value}", param=name)
    return value == "true"


def _amount(params: Obj, name: str = "amount", required: bool = True) -> int | None:
    if name not in params:
        if required:
            raise _missing(name)
        return None
    raw = params[name]
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise ApiError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    amount = int(raw)
    if amount < 1:
        raise ApiError(
            400, "This value must be greater than or equal to 1.", code="parameter_invalid_integer", param=name
        )
    if amount > MAX_AMOUNT:
        raise ApiError(400, "Amount must be no more than $999,999.99", code="amount_too_large", param=name)
    return amount


def _str(params: Obj, name: str, choices: tuple[str, ...] = ()) -> str | None:
    value = params.get(name)
    if value is not None and (not isinstance(value, str) or (choices and value not in choices)):
        allowed = f": must be one of {', '.join(choices)}" if choices else ""
        raise ApiError(400, f"Invalid {name}{allowed}", param=name)
    return value


def _metadata(params: Obj) -> dict[str, str]:
    """Metadata as Stripe stores it: string values, empty strings unset a key."""
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ApiError(400, "Invalid hash", param="metadata")
    return {k: v for k, v in metadata.items() if v != ""}


def _str_list(params: Obj, name: str) -> list[str] | None:
    value = params.get(name)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ApiError(400, f"Invalid array: {name}", param=name)
    return value


# --------------------------------------------------------------------------- public records


@dataclass
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    status: int | None = None  # None when the connection was reset
    replayed: bool = False
    request_id: str = ""
    fault: str | None = None  # "error" | "reset" when fail_next() fired
    at: float = field(default_factory=time.time)


@dataclass
class Delivery:
    event_id: str
    type: str
    url: str
    attempt: int
    status: int | None  # HTTP status, None on connection error or drop
    error: str | None = None  # "dropped", or the connection error
    at: float = field(default_factory=time.time)


@dataclass
class _Fault:
    method: str
    path_prefix: str
    status: int
    times: int
    after_commit: bool
    reset_connection: bool
    should_retry: bool | None
    match: Callable[[str, str], bool] | None = None  # (path, raw body) -> whether this request fails


@dataclass
class _DeliveryConfig:
    duplicate: int = 0
    reorder: bool = False
    delay_seconds: float = 0.0
    drop: Callable[[Obj], bool] | None = None
    hold: bool = False


@dataclass
class _Stored:
    fingerprint: tuple[str, str, str]
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: Obj = field(compare=False)
    url: str = field(compare=False)
    secret: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


# --------------------------------------------------------------------------- the fake


class FakeStripe:
    def __init__(
        self,
        *,
        api_key: str = "sk_test_local",
        webhook_secret: str = "whsec_local",
        host: str = "127.0.0.1",
        port: int = 0,
        account: str = "acct_local",
        async_settle_seconds: float | None = 1.0,
        webhook_retry_backoff: tuple[float, ...] = (0.2, 0.5, 1.0),
    ) -> None:
        self.api_key, self.webhook_secret, self.account = api_key, webhook_secret, account
        self.host, self.port = host, port
        self.async_settle_seconds = async_settle_seconds
        self.webhook_retry_backoff = webhook_retry_backoff
        self.url = ""
        self.payment_intents: dict[str, Obj] = {}
        self.charges: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}
        self.events: list[Obj] = []
        self.requests: list[RecordedRequest] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.RLock()  # guards API state
        self._idem: dict[tuple[str, str, str], _Stored] = {}
        self._idem_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._faults: list[_Fault] = []
        self._endpoints: list[tuple[str, str]] = []
        self._timers: list[threading.Timer] = []
        self._cv = threading.Condition()  # guards everything delivery-related
        self._config = _DeliveryConfig()
        self._jobs: list[_Job] = []
        self._seq = 0
        self._inflight = 0
        self._held: list[Obj] = []
        self._parked: dict[str, list[Obj]] = {}
        self._stopping = False
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        # Called with (method, path, raw body) as each API request arrives, before it is applied:
        # lets a test stage a race (the customer paying the instant before a cancel lands).
        self.before_request: Callable[[str, str, str], None] | None = None
        # Ids the next PaymentIntents created get, in order, before random ones: a sample event's, say.
        self.next_payment_intent_ids: list[str] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        server = _Server((self.host, self.port), _Handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._stopping = False
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-stripe-http", daemon=True),
            threading.Thread(target=self._deliver_loop, name="fake-stripe-webhooks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for timer in self._timers:
            timer.cancel()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- test controls
    def add_webhook_endpoint(self, url: str, *, secret: str | None = None) -> None:
        with self._cv:
            self._endpoints.append((url, secret or self.webhook_secret))

    def set_delivery(
        self,
        *,
        duplicate: int = 0,
        reorder: bool = False,
        delay_seconds: float = 0.0,
        drop: Callable[[Obj], bool] | None = None,
        hold: bool = False,
    ) -> None:
        """Replace all delivery switches (call with no arguments to restore normal delivery)."""
        with self._cv:
            self._config = _DeliveryConfig(duplicate, reorder, delay_seconds, drop, hold)
            if not reorder:  # flush events parked for reordering, still reversed
                parked, self._parked = self._parked, {}
                for group in parked.values():
                    for event in reversed(group):
                        self._schedule(event)

    def release_held(self) -> None:
        with self._cv:
            held, self._held = self._held, []
            for event in held:
                self._route(event)

    def complete_3ds(self, payment_intent_id: str, *, succeed: bool = True) -> None:
        with self._lock:
            pi = self._pi_in_state(payment_intent_id, "requires_action")
            if succeed:
                self._succeed(pi, None)
            else:
                self._fail(pi, None, "payment_intent_authentication_failure")

    def settle(self, payment_intent_id: str, *, succeed: bool = True) -> None:
        with self._lock:
            pi = self._pi_in_state(payment_intent_id, "processing")
            if succeed:
                self._succeed(pi, None)
            else:
                self._fail(pi, None, TEST_PAYMENT_METHODS[pi["payment_method"]].decline_code or _async_fail)

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
    ) -> _Fault:
        """Fail the next `times` matching requests with a Stripe error or a TCP reset.

        `match(path, raw body)` narrows the fault to some requests (one order's, say). Returns the
        fault: setting its `times` to 0 withdraws it.

        With after_commit=True the request is fully processed (and its response stored for its
        idempotency key) before the failure is returned, so a retry gets the replay.
        `should_retry` sets the Stripe-Should-Retry header (default: not sent, so stripe-python
        retries 5xx and connection errors but not 429).
        """
        with self._lock:
            fault = _Fault(
                method.upper(), path_prefix, status, times, after_commit, reset_connection, should_retry, match
            )
            self._faults.append(fault)
        return fault

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until no delivery is queued or in flight (held/parked events don't count)."""
        with self._cv:
            if not self._cv.wait_for(lambda: not self._jobs and not self._inflight, timeout):
                raise TimeoutError(f"{len(self._jobs)} webhook deliveries still pending")

    # ----------------------------------------------------------------- HTTP plumbing
    def _handle(self, h: _Handler) -> None:
        request_id = new_id("req", 14)
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8") if length else ""
        ikey = h.headers.get("Idempotency-Key") if h.command == "POST" else None
        record = RecordedRequest(h.command, url.path, ikey, request_id=request_id)
        if self.before_request is not None:
            self.before_request(h.command, url.path, raw)
        with self._lock:
            self.requests.append(record)
            fault = next(
                (
                    f
                    for f in self._faults
                    if f.times > 0
                    and f.method == h.command
                    and url.path.startswith(f.path_prefix)
                    and (f.match is None or f.match(url.path, raw))
                ),
                None,
            )
            if fault:
                fault.times -= 1
                self._faults = [f for f in self._faults if f.times > 0]
        if fault is None or fault.after_commit:
            status, body, headers = self._process(h, url.path, url.query, raw, ikey, request_id)
            record.status, record.replayed = status, headers.get("Idempotent-Replayed") == "true"
        if fault is None:
            self._respond(h, status, body, headers)
        elif fault.reset_connection:
            record.status, record.fault = None, "reset"
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
        else:
            record.status, record.fault = fault.status, "error"
            if fault.status == 429 and fault.should_retry:
                err = ApiError(
                    429,
                    "This object cannot be accessed right now because another API "
                    "request or Stripe process is currently accessing it. If you see this "
                    "error intermittently, retry the request.",
                    code="lock_timeout",
                )
            elif fault.status == 429:
                err = ApiError(
                    429,
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    type="rate_limit_error",
                    code="rate_limit",
                )
            else:
                err = ApiError(fault.status, "An unknown error occurred (injected by FakeStripe).", type="api_error")
            headers = {"Request-Id": request_id}
            if fault.should_retry is not None:
                headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
            self._respond(h, fault.status, _dump({"error": err.error}), headers)

    def _respond(self, h: _Handler, status: int, body: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Stripe-Version", API_VERSION)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)

    def _process(
        self, h: _Handler, path: str, query: str, raw: str, ikey: str | None, request_id: str
    ) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Request-Id": request_id}
        if ikey:
            headers["Idempotency-Key"] = ikey
        try:
            self._authenticate(h.headers.get("Authorization"))
            params = parse_form(raw if h.command == "POST" else query)
            handler, args = self._route_request(h.command, path)
            if not ikey:
                status, body, _ = self._run(handler, args, params, (request_id, None))
                return status, body, headers
            scope = (self.api_key, h.headers.get("Stripe-Account") or self.account, ikey)
            with self._lock:
                key_lock = self._idem_locks.setdefault(scope, threading.Lock())
            with key_lock:  # concurrent requests with one key run one at a time
                fingerprint = (h.command, path, json.dumps(params, sort_keys=True))
                stored = self._idem.get(scope)
                if stored and stored.fingerprint != fingerprint:
                    raise ApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{ikey}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                if stored:
                    return stored.status, stored.body, {**stored.headers, "Idempotent-Replayed": "true"}
                status, body, store = self._run(handler, args, params, (request_id, ikey))
                if store:
                    self._idem[scope] = _Stored(fingerprint, status, body, headers)
                return status, body, headers
        except ApiError as e:
            return e.status, _dump({"error": e.error}), {**headers, **e.headers}

    def _run(
        self, handler: Callable[..., Obj], args: tuple[str, ...], params: Obj, ctx: tuple[str, str | None]
    ) -> tuple[int, bytes, bool]:
        try:
            return 200, _dump(handler(*args, params, ctx)), True
        except ApiError as e:
            return e.status, _dump({"error": e.error}), e.store
        except Exception:
            log.exception("FakeStripe handler crashed")
            return 500, _dump({"error": {"type": "api_error", "message": "Internal error"}}), False

    def _authenticate(self, header: str | None) -> None:
        key = None
        if header and header.startswith("Bearer "):
            key = header[7:].strip()
        elif header and header.startswith("Basic "):
            key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        if not key:
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in "
                "the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(key, self.api_key):
            masked = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
            raise ApiError(401, f"Invalid API Key provided: {masked}")

    def _route_request(self, method: str, path: str) -> tuple[Callable[..., Obj], tuple[str, ...]]:
        routes: list[tuple[str, str, Callable[..., Obj]]] = [
            ("POST", r"/v1/payment_intents", self._create_pi),
            ("GET", r"/v1/payment_intents/([^/]+)", self._get_pi),
            ("POST", r"/v1/payment_intents/([^/]+)/confirm", self._confirm_pi),
            ("POST", r"/v1/payment_intents/([^/]+)/cancel", self._cancel_pi),
            ("POST", r"/v1/refunds", self._create_refund),
            ("GET", r"/v1/refunds/([^/]+)", self._get_refund),
            ("GET", r"/v1/charges/([^/]+)", self._get_charge),
            ("GET", r"/v1/events/([^/]+)", self._get_event),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler, match.groups()
        raise ApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    # ----------------------------------------------------------------- API: payment intents
    def _create_pi(self, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        _check_known(params, PI_CREATE_PARAMS, {"automatic_payment_methods": {"enabled", "allow_redirects"}})
        amount = _amount(params)
        currency = _str(params, "currency")
        if not currency:
            raise _missing("currency")
        if not re.fullmatch(r"[a-zA-Z]{3}", currency):
            raise ApiError(400, f"Invalid currency: {currency}.", param="currency")
        capture = _str(params, "capture_method", ("automatic", "automatic_async")) or "automatic_async"
        types = _str_list(params, "payment_method_types")
        apm = params.get("automatic_payment_methods")
        metadata = _metadata(params)
        if not isinstance(apm or {}, dict):
            raise ApiError(400, "Invalid hash", param="automatic_payment_methods")
        pm_id = _str(params, "payment_method")
        pm = self._payment_method(pm_id) if pm_id else None
        confirm, off_session = _bool(params, "confirm"), _bool(params, "off_session")
        if off_session and not confirm:
            raise ApiError(400, "You may only specify `off_session` when `confirm` is true.", param="off_session")
        if confirm and not pm:
            raise _missing("payment_method")
        if pm and types and pm.type not in types:
            raise self._incompatible(pm, types)
        with self._lock:
            pi_id = self.next_payment_intent_ids.pop(0) if self.next_payment_intent_ids else new_id("pi")
            pi: Obj = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_capturable": 0,
                "amount_received": 0,
                "automatic_payment_methods": None
                if types
                else {"allow_redirects": (apm or {}).get("allow_redirects", "always"), "enabled": True},
                "canceled_at": None,
                "cancellation_reason": None,
                "capture_method": capture,
                "client_secret": f"{pi_id}_secret_{new_id('x')[2:]}",
                "confirmation_method": "automatic",
                "created": int(time.time()),
                "currency": currency.lower(),
                "customer": _str(params, "customer"),
                "description": _str(params, "description"),
                "last_payment_error": None,
                "latest_charge": None,
                "livemode": False,
                "metadata": metadata,
                "next_action": None,
                "payment_method": pm_id,
                "payment_method_types": types or [pm.type if pm else "card"],
                "receipt_email": _str(params, "receipt_email"),
                "setup_future_usage": None,
                "statement_descriptor_suffix": _str(params, "statement_descriptor_suffix"),
                "status": "requires_confirmation" if pm else "requires_payment_method",
            }
            self.payment_intents[pi_id] = pi
            self._emit("payment_intent.created", pi, ctx)
            if confirm and pm and pm_id:
                self._confirm(pi, pm_id, pm, off_session, ctx)
            return self._render(pi, params)

    def _get_pi(self, pi_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        with self._lock:
            return self._render(self._pi(pi_id), params)

    def _confirm_pi(self, pi_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        _check_known(params, PI_CONFIRM_PARAMS)
        off_session = _bool(params, "off_session")
        with self._lock:
            pi = self._pi(pi_id)
            if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise self._unexpected_state(pi, "confirm")
            pm_id = _str(params, "payment_method") or pi["payment_method"]
            if not pm_id:
                raise ApiError(
                    400,
                    "You cannot confirm this PaymentIntent because it's missing a payment "
                    "method. Update the PaymentIntent with a payment method and then confirm "
                    "it again.",
                    code="payment_intent_unexpected_state",
                    param="payment_method",
                )
            pm = self._payment_method(pm_id)
            if not pi["automatic_payment_methods"] and pm.type not in pi["payment_method_types"]:
                raise self._incompatible(pm, pi["payment_method_types"])
            if params.get("receipt_email"):
                pi["receipt_email"] = params["receipt_email"]
            self._confirm(pi, pm_id, pm, off_session, ctx)
            return self._render(pi, params)

    def _cancel_pi(self, pi_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        _check_known(params, {"cancellation_reason", "expand"})
        reason = _str(params, "cancellation_reason", ("duplicate", "fraudulent", "requested_by_customer", "abandoned"))
        with self._lock:
            pi = self._pi(pi_id)
            if pi["status"] not in CANCELABLE:
                raise self._unexpected_state(pi, "cancel")
            pi.update(status="canceled", canceled_at=int(time.time()), cancellation_reason=reason, next_action=None)
            self._emit("payment_intent.canceled", pi, ctx)
            return self._render(pi, params)

    def _confirm(
        self, pi: Obj, pm_id: str, pm: TestPaymentMethod, off_session: bool, ctx: tuple[str, str | None]
    ) -> None:
        pi.update(payment_method=pm_id, last_payment_error=None, next_action=None)
        charge = self._new_charge(pi, pm_id, pm)
        if pm.outcome == "succeed":
            self._succeed(pi, ctx)
        elif pm.outcome == "decline" or (pm.outcome == "authenticate" and off_session):
            decline = pm.decline_code or "authentication_required"
            code = "card_declined" if pm.outcome == "decline" else "authentication_required"
            error = self._fail(pi, ctx, code, decline_code=decline)
            raise ApiError(402, store=True, payment_intent=_snapshot(pi), **error)  # stored: replays get it too
        elif pm.outcome == "authenticate":
            pi.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "source": new_id("src"),
                        "stripe_js": f"{self.url}/3ds/{pi['id']}",
                    },
                },
            )
            self._emit("payment_intent.requires_action", pi, ctx)
        else:
            charge["status"] = "pending"
            pi["status"] = "processing"
            self._emit("payment_intent.processing", pi, ctx)
            if pm.settles_ok is not None and self.async_settle_seconds is not None:
                timer = threading.Timer(
                    self.async_settle_seconds * pm.settle_factor,
                    self._auto_settle,
                    (pi["id"], charge["id"], pm.settles_ok),
                )
                timer.daemon = True
                self._timers.append(timer)
                timer.start()

    def _auto_settle(self, pi_id: str, charge_id: str, succeed: bool) -> None:
        with self._lock:
            pi = self.payment_intents.get(pi_id)
            if pi and pi["status"] == "processing" and pi["latest_charge"] == charge_id:
                self.settle(pi_id, succeed=succeed)

    def _succeed(self, pi: Obj, ctx: tuple[str, str | None] | None) -> None:
        charge = self.charges[pi["latest_charge"]]
        charge.update(status="succeeded", paid=True, captured=True, amount_captured=charge["amount"])
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None, next_action=None)
        self._emit("charge.succeeded", charge, ctx)
        self._emit("payment_intent.succeeded", pi, ctx)

    def _fail(self, pi: Obj, ctx: tuple[str, str | None] | None, code: str, decline_code: str | None = None) -> Obj:
        """Fail the current attempt: Stripe detaches the PaymentMethod and keeps the error on the intent."""
        charge = self.charges[pi["latest_charge"]]
        pm_id = pi["payment_method"]
        error: Obj = {
            "type": "card_error" if decline_code else "invalid_request_error",
            "code": code,
            "message": ERROR_MESSAGES[decline_code or code],
            "charge": charge["id"],
            "payment_method": _pm_object(pm_id, TEST_PAYMENT_METHODS[pm_id]),
        }
        if decline_code:
            error["decline_code"] = decline_code
        charge.update(status="failed", failure_code=decline_code or code, failure_message=error["message"])
        pi.update(status="requires_payment_method", payment_method=None, next_action=None, last_payment_error=error)
        self._emit("payment_intent.payment_failed", pi, ctx)
        return error

    def _new_charge(self, pi: Obj, pm_id: str, pm: TestPaymentMethod) -> Obj:
        charge: Obj = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "created": int(time.time()),
            "currency": pi["currency"],
            "customer": pi["customer"],
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": dict(pi["metadata"]),
            "paid": False,
            "payment_intent": pi["id"],
            "payment_method": pm_id,
            "payment_method_details": {"type": pm.type, pm.type: {"last4": pm.last4}},
            "refunded": False,
            "status": "pending",
        }
        self.charges[charge["id"]] = charge
        pi["latest_charge"] = charge["id"]
        return charge

    # ----------------------------------------------------------------- API: refunds, lookups
    def _create_refund(self, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        _check_known(params, {"payment_intent", "charge", "amount", "reason", "metadata", "expand"})
        amount = _amount(params, required=False)
        reason = _str(params, "reason", ("duplicate", "fraudulent", "requested_by_customer"))
        metadata = _metadata(params)
        with self._lock:
            if params.get("payment_intent"):
                pi = self._pi(params["payment_intent"], param="payment_intent")
                if pi["status"] != "succeeded":
                    raise ApiError(
                        400,
                        f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                        param="payment_intent",
                    )
                charge = self.charges[pi["latest_charge"]]
            elif params.get("charge"):
                charge = self.charges.get(params["charge"]) or _raise(_no_such("charge", params["charge"], "charge"))
                if charge["status"] != "succeeded":
                    raise ApiError(
                        400, f"Charge {charge['id']} has not succeeded and cannot be refunded.", param="charge"
                    )
            else:
                raise ApiError(
                    400,
                    "One of the following params should be provided for this request: payment_intent or charge.",
                    code="parameter_missing",
                )
            remaining = charge["amount_captured"] - charge["amount_refunded"]
            if charge["refunded"] or remaining <= 0:
                raise ApiError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
            amount = remaining if amount is None else amount
            if amount > remaining:
                raise ApiError(
                    400,
                    f"Refund amount ({_money(amount)}) is greater than unrefunded amount "
                    f"on charge ({_money(remaining)})",
                    param="amount",
                )
            refund: Obj = {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "balance_transaction": None,
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge["currency"],
                "metadata": metadata,
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "succeeded",
            }
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
            self._emit("charge.refunded", charge, ctx)
            return _snapshot(refund)

    def _get_refund(self, refund_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        return self._lookup(self.refunds, "refund", refund_id)

    def _get_charge(self, charge_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        return self._lookup(self.charges, "charge", charge_id)

    def _get_event(self, event_id: str, params: Obj, ctx: tuple[str, str | None]) -> Obj:
        with self._lock:
            return next((e for e in self.events if e["id"] == event_id), None) or _raise(
                _no_such("event", event_id, "id")
            )

    def _lookup(self, table: dict[str, Obj], kind: str, ident: str) -> Obj:
        with self._lock:
            return _snapshot(table.get(ident) or _raise(_no_such(kind, ident, "id")))

    def _pi(self, pi_id: str, param: str = "intent") -> Obj:
        return self.payment_intents.get(pi_id) or _raise(_no_such("payment_intent", pi_id, param))

    def _pi_in_state(self, pi_id: str, status: str) -> Obj:
        pi = self.payment_intents.get(pi_id)
        if pi is None or pi["status"] != status:
            raise ValueError(f"{pi_id} is {pi and pi['status']}, expected {status}")
        return pi

    def _render(self, pi: Obj, params: Obj) -> Obj:
        out = _snapshot(pi)
        if "latest_charge" in (params.get("expand") or ()) and pi["latest_charge"]:
            out["latest_charge"] = _snapshot(self.charges[pi["latest_charge"]])
        return out

    @staticmethod
    def _payment_method(pm_id: str) -> TestPaymentMethod:
        if pm_id not in TEST_PAYMENT_METHODS:
            raise _no_such("PaymentMethod", pm_id, "payment_method")
        return TEST_PAYMENT_METHODS[pm_id]

    @staticmethod
    def _unexpected_state(pi: Obj, action: str) -> ApiError:
        if action == "cancel":
            message = (
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
                f"Only a PaymentIntent with one of the following statuses may be canceled: "
                f"{', '.join(CANCELABLE)}."
            )
        else:
            message = f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}."
        return ApiError(400, message, code="payment_intent_unexpected_state", payment_intent=_snapshot(pi))

    @staticmethod
    def _incompatible(pm: TestPaymentMethod, types: list[str]) -> ApiError:
        return ApiError(
            400,
            f"The PaymentMethod provided ({pm.type}) is not allowed for this "
            f"PaymentIntent. Allowed types: {', '.join(types)}.",
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
        )

    # ----------------------------------------------------------------- events and webhooks
    def _emit(self, type_: str, obj: Obj, ctx: tuple[str, str | None] | None) -> None:
        """Record an event (caller holds self._lock) and hand it to the delivery machinery."""
        request_id, ikey = ctx or (None, None)
        with self._cv:
            event: Obj = {
                "id": new_id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "data": {"object": _snapshot(obj)},
                "livemode": False,
                "pending_webhooks": len(self._endpoints),
                "request": {"id": request_id, "idempotency_key": ikey},
                "type": type_,
            }
            self.events.append(event)
            config = self._config
            if config.drop and config.drop(event):
                self.deliveries.append(Delivery(event["id"], type_, "", 0, None, "dropped"))
            elif config.hold:
                self._held.append(event)
            else:
                self._route(event)

    def _route(self, event: Obj) -> None:
        if not self._config.reorder:
            return self._schedule(event)
        obj = event["data"]["object"]
        group = obj["id"] if obj["object"] == "payment_intent" else obj.get("payment_intent") or obj["id"]
        self._parked.setdefault(group, []).append(event)
        if event["type"] in TERMINAL_EVENTS:
            for parked in reversed(self._parked.pop(group)):
                self._schedule(parked)

    def _schedule(self, event: Obj) -> None:
        due = time.monotonic() + self._config.delay_seconds
        for url, secret in self._endpoints:
            for _ in range(1 + self._config.duplicate):
                self._seq += 1
                heapq.heappush(self._jobs, _Job(due, self._seq, event, url, secret))
        self._cv.notify_all()

    def _deliver_loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._jobs or self._jobs[0].due > time.monotonic()):
                    self._cv.wait(self._jobs[0].due - time.monotonic() if self._jobs else None)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                self._inflight += 1
            status, error = self._post(job)
            with self._cv:
                self.deliveries.append(
                    Delivery(job.event["id"], job.event["type"], job.url, job.attempt, status, error)
                )
                if not (status and 200 <= status < 300) and job.attempt <= len(self.webhook_retry_backoff):
                    self._seq += 1
                    heapq.heappush(
                        self._jobs,
                        _Job(
                            time.monotonic() + self.webhook_retry_backoff[job.attempt - 1],
                            self._seq,
                            job.event,
                            job.url,
                            job.secret,
                            job.attempt + 1,
                        ),
                    )
                self._inflight -= 1
                self._cv.notify_all()

    def _post(self, job: _Job) -> tuple[int | None, str | None]:
        body = json.dumps(job.event, indent=2)
        request = urllib.request.Request(
            job.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": WEBHOOK_USER_AGENT,
                "Stripe-Signature": sign_payload(body, job.secret),
            },
        )
        try:
            with self._opener.open(request, timeout=5) as response:
                return response.status, None
        except urllib.error.HTTPError as e:
            return e.code, None
        except (OSError, ValueError) as e:
            return None, f"{type(e).__name__}: {e}"


def sign_payload(payload: str | bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header value: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>.

    Bytes are signed as they are, so that a body that is not UTF-8 can be signed too."""
    t = int(time.time()) if timestamp is None else timestamp
    body = payload if isinstance(payload, bytes) else payload.encode()
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeStripe/1.0"

    server: _Server

    def _dispatch(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of concurrent requests (same-key races) must not be refused
    fake: FakeStripe


def _snapshot(obj: Obj) -> Obj:
    return json.loads(json.dumps(obj))


def _dump(obj: Obj) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _pm_object(pm_id: str, pm: TestPaymentMethod) -> Obj:
    return {"id": pm_id, "object": "payment_method", "type": pm.type, pm.type: {"last4": pm.last4}}


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _raise(error: Exception) -> Any:
    raise error


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the local fake Stripe API in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", default="sk_test_local")
    parser.add_argument("--webhook-secret", default="whsec_local")
    parser.add_argument(
        "--forward-to", action="append", default=[], metavar="URL", help="webhook endpoint (repeatable)"
    )
    parser.add_argument("--settle-seconds", type=float, default=5.0, help="delay before bank debits leave 'processing'")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeStripe(
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        host=args.host,
        port=args.port,
        async_settle_seconds=args.settle_seconds,
    )
    for url in args.forward_to:
        fake.add_webhook_endpoint(url)
    with fake:
        log.info(
            "fake Stripe at %s (api key %s, webhook secret %s, forwarding to %s)",
            fake.url,
            fake.api_key,
            fake.webhook_secret,
            ", ".join(args.forward_to) or "nobody",
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
