"""What the fake serves to browsers rather than to API clients: its stand-in Stripe.js at `GET /v3/` (where
Stripe serves https://js.stripe.com/v3/, https://docs.stripe.com/js/including) and the hosted 3-D Secure test
page (three_d_secure.py). Neither needs an API key; neither is recorded in `FakeStripe.requests`."""

from pathlib import Path
from urllib.parse import parse_qsl

from local_runtime.fake_stripe.idempotency import Response
from local_runtime.fake_stripe.three_d_secure import PAGE_PATH, HostedPages

STRIPE_JS = Path(__file__).with_name("stripe_v3.js")
HTML = "text/html; charset=utf-8"


class Pages:
    def __init__(self, hosted: HostedPages) -> None:
        self._hosted = hosted

    def answer(self, method: str, path: str, query: str, raw: str) -> Response | None:
        """The page at `path`, or None when it is not one of these (an API request, or Stripe's 404)."""
        if method == "GET" and path in ("/v3", "/v3/"):
            headers = {"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-store"}
            return Response(200, STRIPE_JS.read_bytes(), headers)
        if not path.startswith(PAGE_PATH) or "/" in path[len(PAGE_PATH) :]:
            return None
        source = path[len(PAGE_PATH) :]
        if method == "GET":
            page = self._hosted.show(source, dict(parse_qsl(query)))
        elif method == "POST":
            page = self._hosted.answer(source, dict(parse_qsl(raw)))
        else:
            return None
        headers = {"Content-Type": HTML, "Cache-Control": "no-store"}
        if page.location:
            headers["Location"] = page.location
        return Response(page.status, page.body.encode(), headers)
