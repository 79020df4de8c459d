"""`make demo`: the whole payment workflow on this machine, every scenario, with a timeline each.

No Docker, no network, no AWS or Stripe account: template.yaml is deployed onto moto (Step
Functions runs the real ASL, each Lambda runs its real handler), Stripe is a local server that
stripe-python talks to over HTTP and that delivers signed webhooks to the local HTTP API.
"""

import argparse
import io
import re
import sys
import time

import boto3

from local_runtime import pictures
from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.scenarios import (
    CORE_SCENARIOS,
    DESTINATIONS,
    LOCAL_PARAMETERS,
    LOCAL_TIMING,
    SCENARIOS,
    run_scenario,
    seed_stack,
    summary_table,
)

API_KEY = "sk_test_local_demo"
SIGNING_SECRET = "whsec_local_demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print the summary table only")
    parser.add_argument(
        "--destination", choices=DESTINATIONS,
        help="how Stripe delivers events: every scenario that way (default: every scenario by webhook, then the "
        "core scenarios by webhook with thin events, to EventBridge, and to EventBridge with thin events)",
    )  # fmt: skip
    parser.add_argument(
        "--capture-method", choices=("manual", "automatic"), default="manual",
        help="the stack's CaptureMethod: manual (the default) authorises, reserves the stock, then captures; "
        "automatic charges at once and refunds what cannot be fulfilled",
    )  # fmt: skip
    args = parser.parse_args(argv)
    scenarios = [
        s for s in SCENARIOS
        if (not args.only or s.name in args.only) and not (s.manual_only and args.capture_method == "automatic")
    ]  # fmt: skip
    if not scenarios:
        parser.error(f"no such scenario; choose from: {', '.join(s.name for s in SCENARIOS)}")
    if args.destination:
        runs = [(scenario, args.destination) for scenario in scenarios]
    else:
        runs = [(scenario, "webhook") for scenario in scenarios]
        runs += [(s, d) for d in DESTINATIONS[1:] for s in scenarios if s.name in CORE_SCENARIOS]

    started = time.monotonic()
    function_logs = io.StringIO()
    with (
        FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, async_settle_seconds=0.5) as stripe,
        LocalCloud(
            stripe_api_base=stripe.url,
            stripe_api_key=API_KEY,
            webhook_signing_secret=SIGNING_SECRET,
            parameters={**LOCAL_PARAMETERS, "CaptureMethod": args.capture_method},
            **LOCAL_TIMING,
            log_stream=function_logs,
        ) as cloud,
    ):
        seed_stack(cloud, stripe)
        print(f"Deployed template.yaml locally (CaptureMethod {args.capture_method}) in "
              f"{time.monotonic() - started:.2f}s: "
              f"state machine {cloud.state_machine_arn}, webhook {cloud.url_of('/webhooks/stripe')}, "
              f"Stripe {stripe.url}\n")  # fmt: skip
        outcomes, drawn = [], []
        for scenario, destination in runs:
            outcome = run_scenario(cloud, stripe, scenario, destination=destination)
            outcomes.append(outcome)
            way = "" if destination == "webhook" else f" (events: {destination})"
            caption = f"{scenario.name}{way}: {scenario.description}"
            dot = pictures.picture_of(boto3.client("stepfunctions"), outcome.execution_arn, caption)
            drawn.append(
                (caption, pictures.save(dot, pictures.PICTURES, re.sub(r"[^A-Za-z0-9]+", "-", scenario.name + way)))
            )
            if not args.quiet:
                mark = "ok" if outcome.ok else "MISMATCH"
                print(f"== {scenario.name}{way}: {scenario.description} [{mark}]")
                print(f"   order {outcome.order_id}: {outcome.execution_status} in {outcome.final_state}, "
                      f"order record {outcome.order_status}")  # fmt: skip
                for line in outcome.timeline:
                    print("   " + line)
                for problem in outcome.problems:
                    print("   INVARIANT BROKEN: " + problem)
                print()

    print(summary_table(outcomes))
    index = pictures.write_index(pictures.PICTURES, drawn)
    if all(picture.suffix == ".svg" for _, picture in drawn):
        print(f"\nEach execution drawn: {index}")
    else:
        print(f"\nEach execution as Graphviz DOT: {index} (Graphviz's dot is not installed to draw them as SVG: "
              "apt-get install graphviz, or brew install graphviz)")  # fmt: skip
    failed = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)}/{len(outcomes)} scenarios as expected in {time.monotonic() - started:.1f}s")
    for outcome in failed:
        print(f"MISMATCH {outcome.scenario.name}: expected {' / '.join(outcome.expected)}, "
              f"got {outcome.final_state} / {outcome.order_status}"
              + "".join(f"; {p}" for p in outcome.problems), file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
