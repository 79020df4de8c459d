"""`make invoke FUNCTION=<LogicalId> EVENT=<file>`: the Docker-free counterpart of `sam local invoke`.

Deploys template.yaml locally (as `make demo` does), runs the one function with the event and
prints its response. An event that carries an order gets that order recorded first, as
AcceptOrder would have done. A webhook event (events/webhook/*) is re-signed with the local signing
secret and the current time, as Stripe would sign it; pass --as-is to send it unchanged and
see the webhook refuse a stale signature.
"""

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe, sign_payload
from local_runtime.scenarios import LOCAL_PARAMETERS, seed_inventory

API_KEY = "sk_test_local_invoke"
SIGNING_SECRET = "whsec_local_invoke"


def resign(event: dict[str, Any], secret: str) -> dict[str, Any]:
    body = event.get("body") or ""
    raw = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "stripe-signature"}
    return {**event, "headers": {**headers, "stripe-signature": sign_payload(raw, secret)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="logical id in template.yaml, e.g. StripeWebhookFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/webhook/payment_intent.succeeded.json")
    parser.add_argument("--as-is", action="store_true", help="do not re-sign a webhook event")
    parser.add_argument("--sign-with", metavar="SECRET", help="only print the event signed with SECRET, now")
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    if args.sign_with:
        print(json.dumps(resign(event, args.sign_with), indent=2))
        return 0

    with FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET) as stripe, LocalCloud(
        stripe_api_base=stripe.url, stripe_api_key=API_KEY, webhook_signing_secret=SIGNING_SECRET,
        parameters=LOCAL_PARAMETERS, log_stream=sys.stderr,
    ) as cloud:  # fmt: skip
        functions = cloud.template.functions()
        if args.function not in functions:
            parser.error(f"no function {args.function}; choose from: {', '.join(sorted(functions))}")
        if functions[args.function].http_routes and not args.as_is:
            event = resign(event, SIGNING_SECRET)
        seed_inventory(cloud)
        if "order" in event and args.function != "AcceptOrderFunction":
            cloud.invoke_function("AcceptOrderFunction", {"order": event["order"], "executionId": "make-invoke"})
        result, error = cloud.invoke_function(args.function, event)
    if error is not None:
        print(json.dumps({k: v for k, v in error.items() if k != "stackTrace"}, indent=2))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
