"""3-D Secure as Stripe's test mode runs it: a challenge per attempt, answered on a hosted test page.

`next_action` has Stripe's two shapes (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-next_action):
`use_stripe_sdk` when Stripe.js confirms (it sends `use_stripe_sdk=true` and shows the challenge in a modal,
https://docs.stripe.com/payments/3d-secure/authentication-flow), or when there is no `return_url`; and
`redirect_to_url` with `url` and `return_url` when a `return_url` was given otherwise
(https://docs.stripe.com/payments/3d-secure/authentication-flow#manual-redirect). Both point at the fake's
hosted test page, which, like Stripe's in test mode (https://docs.stripe.com/testing#regulatory-cards), offers
"Complete" and "Fail". After a redirect challenge the page sends the customer to `return_url` with
`payment_intent`, `payment_intent_client_secret` and `redirect_status`
(https://docs.stripe.com/payments/accept-a-payment?platform=web#web-post-payment); inside Stripe.js's modal it
tells the parent window instead.
"""

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from local_runtime.fake_stripe.objects import Obj, new_id

PAGE_PATH = "/redirect/authenticate/"
COMPLETE_MESSAGE = "fake-stripe:3ds-complete"  # what the page posts to Stripe.js's modal
# `redirect_status` per PaymentIntent status: Stripe.js redirects "after a successful confirmation"
# (https://docs.stripe.com/js/payment_intents/confirm_payment), and a card held for manual capture
# (`requires_capture`) is one; the fake calls it "succeeded", as stripe_v3.js does.
REDIRECT_STATUS = {"succeeded": "succeeded", "requires_capture": "succeeded", "processing": "processing"}


@dataclass
class Challenge:
    source: str
    secret: str
    payment_intent: str
    return_url: str | None  # set for redirect_to_url challenges only
    answered: bool = False


@dataclass(frozen=True)
class Page:
    status: int
    body: str
    location: str | None = None


class Challenges:
    def __init__(self, base_url: Callable[[], str]) -> None:
        self._base_url = base_url
        self._challenges: dict[str, Challenge] = {}
        self._latest: dict[str, str] = {}  # PaymentIntent id -> source of its latest challenge

    def start(self, pi: Obj, *, return_url: str | None, use_stripe_sdk: bool) -> Obj:
        """A new challenge for this attempt, and the `next_action` that points the customer at it."""
        source = new_id("src")
        redirect = bool(return_url) and not use_stripe_sdk
        challenge = Challenge(source, new_id("src_client_secret", 24), pi["id"], return_url if redirect else None)
        self._challenges[source] = challenge
        self._latest[pi["id"]] = source
        url = f"{self._base_url()}{PAGE_PATH}{source}?{urlencode({'client_secret': challenge.secret})}"
        if redirect:
            return {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url, "url": url}}
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": source, "stripe_js": url},
        }

    def pending(self, source: str, secret: str | None, payment_intents: dict[str, Obj]) -> tuple[Challenge, Obj]:
        """The challenge and its PaymentIntent, if it is the one that PaymentIntent is waiting on."""
        challenge = self._challenges.get(source)
        if challenge is None or secret != challenge.secret:
            raise LookupError("No such authentication.")
        pi = payment_intents[challenge.payment_intent]
        waiting = pi["status"] == "requires_action" and self._latest.get(pi["id"]) == source
        if challenge.answered or not waiting:
            raise LookupError("This authentication is no longer pending.")
        return challenge, pi


class HostedPages:
    """GET shows the challenge; POST with `outcome=complete|fail` answers it, as the page's buttons do."""

    def __init__(self, challenges: Challenges, payment_intents: dict[str, Obj], answer: Callable[[Obj, bool], None]):
        self._challenges, self._payment_intents, self._answer = challenges, payment_intents, answer

    def show(self, source: str, query: Obj) -> Page:
        try:
            challenge, pi = self._challenges.pending(source, query.get("client_secret"), self._payment_intents)
        except LookupError as gone:
            return Page(400, _page("3D Secure 2 Test Page", f"<p>{html.escape(str(gone))}</p>"))
        amount = f"{pi['amount'] / 100:,.2f} {pi['currency'].upper()}"
        form = (
            f'<form method="post" action="{PAGE_PATH}{source}">'
            f'<input type="hidden" name="client_secret" value="{html.escape(challenge.secret)}">'
            '<button type="submit" name="outcome" value="complete" id="test-source-authorize-3ds">Complete</button> '
            '<button type="submit" name="outcome" value="fail" id="test-source-fail-3ds">Fail</button>'
            "</form>"
        )
        body = (
            "<p>This is a 3D Secure 2 test payment. In live mode your bank would ask you to confirm it.</p>"
            f"<p>Amount: <strong>{html.escape(amount)}</strong></p>{form}"
        )
        return Page(200, _page("3D Secure 2 Test Page", body))

    def answer(self, source: str, form: Obj) -> Page:
        outcome = form.get("outcome")
        if outcome not in ("complete", "fail"):
            return Page(400, _page("3D Secure 2 Test Page", "<p>Press Complete or Fail.</p>"))
        try:
            challenge, pi = self._challenges.pending(source, form.get("client_secret"), self._payment_intents)
        except LookupError as gone:
            return Page(400, _page("3D Secure 2 Test Page", f"<p>{html.escape(str(gone))}</p>"))
        challenge.answered = True
        self._answer(pi, outcome == "complete")
        if challenge.return_url:
            redirect_status = REDIRECT_STATUS.get(pi["status"], "failed")
            query = urlencode(
                {
                    "payment_intent": pi["id"],
                    "payment_intent_client_secret": pi["client_secret"],
                    "redirect_status": redirect_status,
                }
            )
            separator = "&" if "?" in challenge.return_url else "?"
            location = f"{challenge.return_url}{separator}{query}"
            return Page(303, _page("Redirecting", f'<a href="{html.escape(location)}">Continue</a>'), location)
        message = json.dumps({"type": COMPLETE_MESSAGE, "source": source})
        script = f"<script>window.parent.postMessage({message}, '*');</script>"
        return Page(200, _page("3D Secure 2 Test Page", f"<p>Authentication answered.</p>{script}"))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
