"""`make stack`: keep the local stack up and poke it with the AWS CLI (`--endpoint-url`).

The same deployment as `make demo`, plus an AWS endpoint on 127.0.0.1 that serves the very
state the functions see, and the local Stripe on a fixed port. With `--checkout` (`make checkout`),
also the example checkout page (web/) in front of it. Ctrl-C stops everything.
"""

import argparse
import contextlib
import io
import sys
import threading

from moto.server import ThreadedMotoServer

from local_runtime import pictures
from local_runtime.checkout import serving_checkout
from local_runtime.engine import FAKE_AWS_ENV, LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.quotas import Quotas
from local_runtime.scenarios import LOCAL_PARAMETERS, LOCAL_TIMING, seed_stack
from web.merchant import ShopServer

API_KEY = "sk_test_local_stack"
SIGNING_SECRET = "whsec_local_stack"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aws-port", type=int, default=4566)
    parser.add_argument("--stripe-port", type=int, default=12111)
    parser.add_argument("--timeout-seconds", default="300", help="PaymentTimeoutSeconds for this stack")
    parser.add_argument("--checkout", action="store_true", help="also serve the example checkout page (web/)")
    parser.add_argument("--checkout-port", type=int, default=8000)
    parser.add_argument(
        "--quotas", type=float, metavar="SCALE",
        help="enforce Stripe's rate limits, the StartExecution and SendTaskSuccess buckets and DynamoDB's "
        "per-partition write rate at SCALE times their defaults (local_runtime/quotas.py); off by default",
    )  # fmt: skip
    args = parser.parse_args(argv)
    quotas = Quotas.scaled(args.quotas) if args.quotas else None

    parameters = {**LOCAL_PARAMETERS, "PaymentTimeoutSeconds": args.timeout_seconds}
    shop_server = ShopServer("127.0.0.1", args.checkout_port) if args.checkout else None
    if shop_server:
        parameters["CheckoutPageUrl"] = shop_server.url
    stripe_limits = quotas.stripe_limits() if quotas else {}
    fake = FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, port=args.stripe_port, **stripe_limits)
    with fake as stripe, LocalCloud(
        stripe_api_base=stripe.url,
        stripe_api_key=API_KEY,
        webhook_signing_secret=SIGNING_SECRET,
        parameters=parameters,
        log_stream=io.StringIO(),
        quotas=quotas,
        **LOCAL_TIMING,
    ) as cloud, serving_checkout(shop_server, cloud, stripe) if shop_server else contextlib.nullcontext():
        stripe.add_webhook_endpoint(cloud.url_of("/webhooks/stripe"))
        seed_stack(cloud, stripe)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.aws_port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{args.aws_port}"
        credentials = " ".join(f"{k}={FAKE_AWS_ENV[k]}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
        print(
            f"""Local stack is up (Ctrl-C to stop).
  AWS endpoint   {endpoint}   (region us-east-1; any credentials, e.g. {credentials})
  state machine  {cloud.state_machine_arn}
  webhook        {cloud.url_of("/webhooks/stripe")}
  merchant API   {cloud.api_url}   (POST /payments, GET /payments/{{orderId}}: SigV4 with {credentials})
  Stripe API     {stripe.url}   (API key {API_KEY}; webhooks signed with the local secret)

Try:
  export {credentials} AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url {endpoint} stepfunctions start-execution --state-machine-arn {cloud.state_machine_arn} \\
      --name order-succeeded-1 --input file://events/start/succeeded.json
  aws --endpoint-url {endpoint} stepfunctions describe-execution \\
      --execution-arn {cloud.state_machine_arn.replace(":stateMachine:", ":execution:")}:order-succeeded-1
  make picture EXECUTION=order-succeeded-1 ENDPOINT={endpoint}   # draws it in {pictures.PICTURES}/
  aws --endpoint-url {endpoint} dynamodb scan --table-name {cloud.template.physical["OrdersTable"]}""",
            flush=True,
        )
        if shop_server:
            print(
                f"""
Checkout page: {shop_server.url}
  pay with 4242 4242 4242 4242 (paid), 4000 0025 0000 3155 (3-D Secure), 4000 0000 0000 0002 (declined);
  any future expiry (12 / 34), any CVC""",
                flush=True,
            )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
