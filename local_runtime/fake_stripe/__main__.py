"""`python -m local_runtime.fake_stripe`: the fake Stripe API in the foreground."""

import argparse
import contextlib
import logging
import threading

from local_runtime.fake_stripe.fake import FakeStripe

log = logging.getLogger("local_runtime.fake_stripe")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the local fake Stripe API in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--api-key", default="sk_test_local")
    parser.add_argument("--publishable-key", default="pk_test_local", help="the key Stripe.js uses (served at /v3/)")
    parser.add_argument("--webhook-secret", default="whsec_local")
    parser.add_argument(
        "--forward-to", action="append", default=[], metavar="URL", help="webhook endpoint (repeatable)"
    )
    parser.add_argument("--settle-seconds", type=float, default=5.0, help="delay before bank debits leave 'processing'")
    parser.add_argument("--rate-limit", type=float, metavar="PER_SECOND", help="429 beyond this rate (sandbox: 25)")
    parser.add_argument(
        "--endpoint-rate-limit", type=float, metavar="PER_SECOND", help="429 beyond this rate per endpoint (25)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeStripe(
        api_key=args.api_key,
        publishable_key=args.publishable_key,
        webhook_secret=args.webhook_secret,
        host=args.host,
        port=args.port,
        async_settle_seconds=args.settle_seconds,
        rate_limit_per_second=args.rate_limit,
        endpoint_rate_limit_per_second=args.endpoint_rate_limit,
    )
    for url in args.forward_to:
        fake.add_webhook_endpoint(url)
    with fake:
        log.info(
            "fake Stripe at %s (api key %s, publishable key %s, Stripe.js at %s/v3/, webhook secret %s, "
            "forwarding to %s)",
            fake.url,
            fake.api_key,
            fake.publishable_key,
            fake.url,
            fake.webhook_secret,
            ", ".join(args.forward_to) or "nobody",
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
