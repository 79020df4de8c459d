"""`make invoke FUNCTION=<LogicalId> EVENT=<file>`: the Docker-free counterpart of `sam local invoke`.

Deploys template.yaml locally (as `make demo` does), makes the stack hold the order and PaymentIntent the
event names (local_runtime/samples.py), runs the one function with the event and prints its response.
A webhook event (events/webhook/*) is re-signed with the local signing secret and the current time, as
Stripe would sign it; pass --as-is to send it unchanged and see the webhook refuse a stale signature. A
bare Stripe event (events/stripe/*) is sent as Stripe sends it: the signed body of a POST. The state
machine's logical id runs an execution with the event as its input (events/start/*), prints how it
ended and draws it. With no arguments: every function with its samples and the answer each gets.
"""

import argparse
import base64
import io
import json
import sys
from pathlib import Path
from typing import Any

import boto3

from local_runtime import pictures
from local_runtime.engine import LocalCloud, http_api_event
from local_runtime.fake_stripe import FakeStripe, sign_payload
from local_runtime.samples import SAMPLES, STATE_MACHINE, prepare
from local_runtime.scenarios import LOCAL_PARAMETERS, LOCAL_TIMING, final_state, seed_stack
from local_runtime.template import Route, Template

API_KEY = "sk_test_local_invoke"
SIGNING_SECRET = "whsec_local_invoke"
UNREADABLE = {"KeyError", "TypeError", "AttributeError"}  # what a handler raises on an event of another shape


def resign(event: dict[str, Any], secret: str) -> dict[str, Any]:
    body = event.get("body") or ""
    raw = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "stripe-signature"}
    return {**event, "headers": {**headers, "stripe-signature": sign_payload(raw, secret)}}


def as_request(event: Any, route: Route, as_is: bool) -> Any:
    """The HTTP API event a webhook event or a bare Stripe event makes, signed now; anything else unchanged."""
    if isinstance(event, dict) and event.get("object") == "event":
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0"}
        event = http_api_event(route.method, route.path, headers, json.dumps(event).encode())
    is_request = isinstance(event, dict) and "requestContext" in event
    return resign(event, SIGNING_SECRET) if is_request and not as_is else event


def invoke(target: str, event: Any, *, as_is: bool = False, log_stream: io.TextIOBase | None = None) -> dict:
    """What `make invoke` prints for `event` sent to `target` (a logical id) on a fresh local stack."""
    with FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET) as stripe, LocalCloud(
        stripe_api_base=stripe.url, stripe_api_key=API_KEY, webhook_signing_secret=SIGNING_SECRET,
        parameters=LOCAL_PARAMETERS, log_stream=log_stream,
        **LOCAL_TIMING,
    ) as cloud:  # fmt: skip
        seed_stack(cloud, stripe)
        prepare(cloud, stripe, target, event)
        if target == STATE_MACHINE:
            stripe.add_webhook_endpoint(cloud.url_of("/webhooks/stripe"))
            return run_execution(cloud, event)
        routes = cloud.template.functions()[target].http_routes
        result, error = cloud.invoke_function(target, as_request(event, routes[0], as_is) if routes else event)
    if error is None:
        return result
    error = {key: value for key, value in error.items() if key != "stackTrace"}
    examples = [f"events/{path}" for path, sample in SAMPLES.items() if sample.target == target]
    if error["errorType"] in UNREADABLE and examples:
        error["expected"] = f"{target} reads an event like {', '.join(examples)}"
    return error


def run_execution(cloud: LocalCloud, start_input: Any) -> dict[str, Any]:
    name = str(start_input.get("orderId") or "make-invoke") if isinstance(start_input, dict) else "make-invoke"
    execution = cloud.wait_for(cloud.start_payment(start_input, name=name), timeout=60)
    dot = pictures.picture_of(boto3.client("stepfunctions"), execution["executionArn"], name)
    return {
        "executionArn": execution["executionArn"],
        "status": execution["status"],
        "finalState": final_state(cloud.history(execution["executionArn"])),
        **{key: execution[key] for key in ("error", "cause") if key in execution},
        "picture": str(pictures.save(dot, pictures.PICTURES, name)),
    }


def targets() -> list[str]:
    """What `make invoke` runs: every function and the state machine, by logical id."""
    template = Template("stripe-payments")
    return [*template.functions(), *template.of_type("AWS::Serverless::StateMachine")]


def samples_by_target() -> str:
    """Every function and the state machine, each with its samples and the answer each gets."""
    lines = ["usage: make invoke FUNCTION=<LogicalId> EVENT=<file>", ""]
    for target in targets():
        samples = {f"events/{path}": sample for path, sample in sorted(SAMPLES.items()) if sample.target == target}
        lines.append(
            target + (" (state machine: the event is an execution's input)" if target == STATE_MACHINE else "")
        )
        width = max(map(len, samples), default=0)
        for path, sample in samples.items():
            answer = " ".join(f"{key}={v if isinstance(v, str) else json.dumps(v)}" for key, v in sample.answer.items())
            lines.append(f"  {path.ljust(width)}  {answer}")
        if not samples:
            lines.append("  (no sample)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", nargs="?", help="logical id in template.yaml, e.g. StripeWebhookFunction")
    parser.add_argument(
        "event", nargs="?", type=Path, help="event file, e.g. events/webhook/payment_intent.succeeded.json"
    )
    parser.add_argument("--as-is", action="store_true", help="do not re-sign a webhook event")
    parser.add_argument("--sign-with", metavar="SECRET", help="only print the event signed with SECRET, now")
    args = parser.parse_args(argv)
    if not (args.function and args.event):
        print(samples_by_target())
        return 2 if args.function or args.event else 0
    event = json.loads(args.event.read_text())
    if args.sign_with:
        print(json.dumps(resign(event, args.sign_with), indent=2))
        return 0
    if args.function not in targets():
        parser.error(f"no function or state machine {args.function}; `make invoke` lists them")
    answer = invoke(args.function, event, as_is=args.as_is, log_stream=sys.stderr)
    print(json.dumps(answer, indent=2, default=str))
    return 1 if "errorType" in answer else 0


if __name__ == "__main__":
    sys.exit(main())
