"""The customer's side for scripts and tests: what the stand-in Stripe.js (stripe_v3.js) does in a browser,
made over the same HTTP endpoints with the publishable key and the PaymentIntent's `client_secret`.

    browser = Browser(fake.url, fake.publishable_key)
    result = browser.pay(client_secret, "4000002760003184", three_d_secure="complete")
    result.payment_intent["status"]  # "succeeded"; or result.error: Stripe's error fields

Results mirror Stripe.js's promises (https://docs.stripe.com/js/payment_intents/confirm_payment,
https://docs.stripe.com/js/payment_intents/handle_next_action,
https://docs.stripe.com/js/payment_intents/retrieve_payment_intent): either `payment_intent` (the publishable-key
view of the PaymentIntent) or `error` (`type`, `code`, `decline_code`, `message`, and `payment_intent` when
there is one). Like Stripe.js with `redirect: "if_required"`, `pay` confirms with `use_stripe_sdk=true`, so a
3-D Secure challenge opens on the hosted page (the modal) and the result comes back here.
"""

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin

Obj = dict[str, Any]
THREE_D_SECURE_ANSWERS = ("complete", "fail", None)


@dataclass(frozen=True)
class Result:
    payment_intent: Obj | None = None
    payment_method: Obj | None = None
    error: Obj | None = None
    redirected_to: str | None = None  # return_url with Stripe's query, after a redirect_to_url challenge

    @property
    def status(self) -> str | None:
        return self.payment_intent["status"] if self.payment_intent else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the customer's return_url belongs to the merchant: report it, don't fetch it


class Browser:
    def __init__(self, api_base: str, publishable_key: str, *, timeout: float = 10.0) -> None:
        self.api_base, self.publishable_key, self.timeout = api_base.rstrip("/"), publishable_key, timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    # ----------------------------------------------------------------- Stripe.js's calls
    def retrieve_payment_intent(self, client_secret: str) -> Result:
        path = f"/v1/payment_intents/{_intent_id(client_secret)}"
        status, body = self._api("GET", path, {"client_secret": client_secret})
        return Result(payment_intent=body) if status == 200 else Result(error=body["error"])

    def create_payment_method(
        self, card_number: str, *, exp_month: int = 12, exp_year: int | None = None, cvc: str = "123"
    ) -> Result:
        card = _card(card_number, exp_month, exp_year, cvc)
        status, body = self._api("POST", "/v1/payment_methods", {"type": "card", "card": card})
        return Result(payment_method=body) if status == 200 else Result(error=body["error"])

    def pay(
        self,
        client_secret: str,
        card_number: str | None = None,
        *,
        payment_method: str | None = None,
        three_d_secure: str | None = "complete",
        return_url: str | None = None,
        exp_month: int = 12,
        exp_year: int | None = None,
        cvc: str = "123",
    ) -> Result:
        """Confirm the PaymentIntent with a card typed into the Payment Element (`card_number`) or a saved
        PaymentMethod, then answer 3-D Secure if asked: "complete", "fail", or None to leave it waiting."""
        if three_d_secure not in THREE_D_SECURE_ANSWERS:
            raise ValueError(f"three_d_secure must be one of {THREE_D_SECURE_ANSWERS}")
        if (card_number is None) == (payment_method is None):
            raise ValueError("pay with a card_number or a payment_method, not both")
        params: Obj = {"client_secret": client_secret, "use_stripe_sdk": "true"}
        if card_number is not None:
            params["payment_method_data"] = {"type": "card", "card": _card(card_number, exp_month, exp_year, cvc)}
        else:
            params["payment_method"] = payment_method
        if return_url:
            params["return_url"] = return_url
        status, body = self._api("POST", f"/v1/payment_intents/{_intent_id(client_secret)}/confirm", params)
        if status != 200:
            return Result(error=body["error"])
        if body["status"] != "requires_action" or three_d_secure is None:
            return Result(payment_intent=body)
        return self.handle_next_action(client_secret, three_d_secure=three_d_secure)

    def handle_next_action(self, client_secret: str, *, three_d_secure: str = "complete") -> Result:
        """Open the PaymentIntent's challenge and press the button; ValueError unless it is `requires_action`
        (Stripe.js throws then too)."""
        if three_d_secure not in ("complete", "fail"):
            raise ValueError("three_d_secure must be 'complete' or 'fail'")
        fetched = self.retrieve_payment_intent(client_secret)
        if fetched.error or fetched.status != "requires_action":
            raise ValueError(f"the PaymentIntent is {fetched.status or fetched.error}, not requires_action")
        assert fetched.payment_intent is not None
        url = _challenge_url(fetched.payment_intent)
        redirected_to = self.answer_challenge(url, complete=three_d_secure == "complete")
        after = self.retrieve_payment_intent(client_secret)
        if after.payment_intent and after.status == "requires_payment_method":
            error = {**after.payment_intent["last_payment_error"], "payment_intent": after.payment_intent}
            return Result(error=error, redirected_to=redirected_to)
        return Result(payment_intent=after.payment_intent, error=after.error, redirected_to=redirected_to)

    def authenticate(self, client_secret: str, *, complete: bool) -> Result:
        return self.handle_next_action(client_secret, three_d_secure="complete" if complete else "fail")

    # ----------------------------------------------------------------- the hosted 3-D Secure page
    def answer_challenge(self, url: str, *, complete: bool) -> str | None:
        """Load the challenge page and press "Complete" or "Fail", as the customer does. Returns where the page
        redirects to (a redirect challenge's return_url), if anywhere. ValueError if it is no longer pending."""
        status, page, _ = self._http("GET", url)
        form = re.search(r'<form method="post" action="([^"]+)">.*?name="client_secret" value="([^"]+)"', page, re.S)
        if status != 200 or form is None:
            raise ValueError(f"the 3-D Secure page refused: {_text(page)}")
        outcome = "complete" if complete else "fail"
        data = urlencode({"client_secret": form.group(2), "outcome": outcome})
        status, page, location = self._http("POST", urljoin(url, form.group(1)), data)
        if status not in (200, 303):
            raise ValueError(f"the 3-D Secure page refused: {_text(page)}")
        return location

    # ----------------------------------------------------------------- HTTP
    def _api(self, method: str, path: str, params: Obj) -> tuple[int, Obj]:
        query = urlencode(_flatten({"key": self.publishable_key, **params}))
        url = self.api_base + path + (f"?{query}" if method == "GET" else "")
        status, text, _ = self._http(method, url, query if method == "POST" else None)
        return status, json.loads(text)

    def _http(self, method: str, url: str, form: str | None = None) -> tuple[int, str, str | None]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        data = form.encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read().decode(), response.headers.get("Location")
        except urllib.error.HTTPError as answer:
            return answer.code, answer.read().decode(), answer.headers.get("Location")


def _intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_", 1)[0]


def _challenge_url(pi: Obj) -> str:
    action = pi["next_action"]
    if action["type"] == "use_stripe_sdk":
        return str(action["use_stripe_sdk"]["stripe_js"])
    return str(action["redirect_to_url"]["url"])


def _card(number: str, exp_month: int, exp_year: int | None, cvc: str) -> Obj:
    year = exp_year if exp_year is not None else time.gmtime().tm_year + 3
    return {"number": number, "exp_month": str(exp_month), "exp_year": str(year), "cvc": cvc}


def _flatten(params: Obj, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested dicts as a[b][c]=v."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            pairs += _flatten(value, name)
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


def _text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page.split("<body>", 1)[-1]).split())
