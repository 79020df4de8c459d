"""What one deployment can sustain: each quota divided by what one payment uses of it; the smallest wins.

The usage comes from the per-path counts `make bench` measures on the local stack (bench/payments.py:
Stripe requests by endpoint, StartExecution, state transitions, SendTaskSuccess, Lambda invocations,
DynamoDB write units by item, webhook deliveries); the quotas from local_runtime/quotas.py (documented
defaults, each with its page) and `RAISED` below. The same `sustained_rate`, fed the local runtime's
scaled quotas (`Quotas.scaled(s).model_limits()`), predicts what the local stack sustains with them on.

    python -m bench.capacity                 # measures the paths (about a minute), rewrites only this section
    python -m bench.capacity --local-check   # then card payments on the local stack with the quotas on, per
                                             # capture method: the measured rate against the model's
"""

import argparse
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench import costs
from bench.payments import CAPTURE_METHODS, PathCounts
from local_runtime.quotas import DOCUMENTED, Quotas
from local_runtime.template import ROOT, Template

BEGIN = "<!-- capacity:begin: written by `make bench` or `python -m bench.capacity`; edit outside these markers -->"
END = "<!-- capacity:end -->"
# Items every payment may write: all orders for one popular SKU decrement the same Inventory item. Orders and
# Payments items are one per order and per PaymentIntent, so their writes never add up across payments.
# The Stripe budget's one item (StripeRateLimitTable) takes a write per Stripe request from every payment too.
SHARED_ITEM_TABLES = frozenset({"InventoryTable", "StripeRateLimitTable"})
LOCAL_SCALE = 0.1  # the scale the local quotas are shown at (Quotas.scaled)


def webhook_reserved_concurrency() -> int:
    """The template's default WebhookReservedConcurrency (0: the webhook shares the account's concurrency)."""
    return int(Template("stripe-payments").document["Parameters"]["WebhookReservedConcurrency"]["Default"])


def usage(c: PathCounts) -> dict[str, float]:
    """What one payment on this path uses of each quota, keyed as the quotas are (`family:detail` for one of many).

    Lambda concurrency by Little's law: concurrency = payments/s x the execution-seconds one payment holds,
    each function's invocations times its assumed duration in AWS (costs.ASSUMED_MS)."""
    invocations = costs.billed_invocations(c)
    seconds = {name: n * costs.ASSUMED_MS.get(name, 100) / 1000 for name, n in invocations.items()}
    used: dict[str, float] = {
        "stripe.global": len(c.stripe_calls),
        "stripe.budget": c.budgeted_stripe_calls,
        **{f"stripe.endpoint:{endpoint}": n for endpoint, n in c.stripe_endpoints.items()},
        "sfn.StartExecution": c.start_executions,
        "sfn.StateTransition": c.transitions,
        "sfn.SendTaskSuccess": c.calls("stepfunctions", "SendTaskSuccess"),
        "lambda.concurrency": sum(seconds.values()),
        "lambda.webhook_concurrency": seconds.get("StripeWebhookFunction", 0.0),
        "apigateway.requests": c.webhook_requests,
        **{f"dynamodb.table_writes:{table}": n for table, n in c.table_write_units().items()},
    }
    for (table, key), n in c.item_write_units.items():
        if table in SHARED_ITEM_TABLES:
            used[f"dynamodb.partition_writes:{table} {key}"] = n
    return {key: value for key, value in used.items() if value}


def limit_of(quotas: Mapping[str, float], key: str) -> float | None:
    """The quota for a usage key: its own, else its family's (`stripe.endpoint` for `stripe.endpoint:GET ...`)."""
    return quotas.get(key, quotas.get(key.split(":", 1)[0]))


def limits_in_order(per_payment_counts: Mapping[str, float], quotas: Mapping[str, float]) -> list[tuple[float, str]]:
    """(payments/s that quota alone allows = quota / usage, usage key) for every used quota, the tightest first.

    Usage with no quota in `quotas` bounds nothing (locally, only the enforced quotas are given)."""
    allowed = []
    for key, used in per_payment_counts.items():
        limit = limit_of(quotas, key)
        if limit is not None and used > 0:
            allowed.append((limit / used, key))
    return sorted(allowed)


def sustained_rate(per_payment_counts: Mapping[str, float], quotas: Mapping[str, float]) -> tuple[float, str]:
    """Payments per second one deployment sustains, and the usage key whose quota binds: min of quota / usage."""
    return next(iter(limits_in_order(per_payment_counts, quotas)), (math.inf, ""))


@dataclass(frozen=True)
class QuotaSet:
    name: str
    limits: dict[str, float]
    note: str


def stripe_budget() -> float:
    """The template's default StripeRequestsPerSecond: the stack's own limit on its Stripe requests."""
    return float(Template("stripe-payments").document["Parameters"]["StripeRequestsPerSecond"]["Default"])


def default_limits() -> dict[str, float]:
    limits = {key: quota.rate for key, quota in DOCUMENTED.items()}
    limits["stripe.budget"] = stripe_budget()
    reserved = webhook_reserved_concurrency()
    if reserved:
        limits["lambda.webhook_concurrency"] = reserved
    return limits


# A plausible set after quota requests (assumed, not documented): what each service lets a customer ask for.
RAISED_NOTES = {
    "stripe.global": (500, 'asked of Stripe support ("contact us at least 6 weeks in advance" for a large increase)'),
    "stripe.endpoint": (100, "per endpoint, asked of Stripe support with the global increase"),
    "stripe.budget": (80, "StripeRequestsPerSecond for a live account the stack has to itself (docs/peak-load.md)"),
    "sfn.StartExecution": (1000, "Service Quotas request (soft quota)"),
    "sfn.SendTaskSuccess": (1500, "Service Quotas request (soft quota)"),
    "sfn.StateTransition": (5000, "Service Quotas request (soft quota)"),
    "lambda.concurrency": (10000, 'Service Quotas request ("tens of thousands")'),
    "lambda.webhook_concurrency": (200, "the template's WebhookReservedConcurrency parameter"),
    "dynamodb.partition_writes": (1000, "cannot be raised: shard the SKU's counter to go beyond"),
    "dynamodb.table_writes": (80000, "Service Quotas request"),
    "apigateway.requests": (10000, "unchanged"),
}


def quota_sets() -> list[QuotaSet]:
    raised = {**default_limits(), **{key: rate for key, (rate, _) in RAISED_NOTES.items()}}
    return [
        QuotaSet("default", default_limits(), "documented defaults, us-east-1, Stripe live mode"),
        QuotaSet("raised", raised, "the raised set below"),
    ]


_NAMES = {
    "stripe.global": "Stripe, requests per account",
    "stripe.endpoint": "Stripe, requests per endpoint",
    "stripe.budget": "the stack's Stripe budget (StripeRequestsPerSecond)",
    "sfn.StartExecution": "StartExecution bucket",
    "sfn.SendTaskSuccess": "SendTaskSuccess bucket",
    "sfn.StateTransition": "state transitions (Standard)",
    "lambda.concurrency": "Lambda concurrent executions",
    "lambda.webhook_concurrency": "webhook's reserved concurrency",
    "dynamodb.partition_writes": "DynamoDB write units on one item",
    "dynamodb.table_writes": "DynamoDB write units per table",
    "apigateway.requests": "HTTP API requests",
}


def describe(binding: str, limits: Mapping[str, float]) -> str:
    family, _, detail = binding.partition(":")
    limit = limit_of(limits, binding)
    return f"{_NAMES.get(family, family)}{f' ({detail})' if detail else ''}, {limit:,g}"


def _rate(rate: float) -> str:
    return "unbounded" if math.isinf(rate) else f"{rate:,.1f}"


def render(paths: Mapping[str, Mapping[str, PathCounts]], command: str = "make bench") -> str:
    """The capacity section of BENCHMARKS.md, between its markers."""
    sets = quota_sets()
    out = [BEGIN, "", "### Capacity model (generated)", ""]
    out += [
        f"Computed by `{command}` from the per-path counts below (one local run of each path, each capture method). "
        "Sustained payments per second of one deployment = min over quotas of quota / what one payment uses of it; "
        "the quota that gives the minimum binds (each cell: the rate and that quota; then the next service's quota "
        "to bind once that one is raised).",
        "",
        "| Path | " + " | ".join(f"{m} capture, {s.name} quotas" for m in CAPTURE_METHODS for s in sets) + " |",
        "| --- |" + " --- |" * (len(CAPTURE_METHODS) * len(sets)),
    ]
    for path in next(iter(paths.values())):
        cells = []
        for method in CAPTURE_METHODS:
            for quota_set in sets:
                ranked = limits_in_order(usage(paths[method][path]), quota_set.limits)
                (rate, binding), *others = ranked or [(math.inf, "")]
                after = next(((r, k) for r, k in others if k.split(":")[0] != binding.split(":")[0]), None)
                then = f"; then {_rate(after[0])}/s: {describe(after[1], quota_set.limits)}" if after else ""
                cells.append(f"**{_rate(rate)}**/s: {describe(binding, quota_set.limits)}{then}")
        out.append(f"| {path} | " + " | ".join(cells) + " |")

    out += ["", "The AWS side alone (Stripe's limits left out), success path:", ""]
    for method in CAPTURE_METHODS:
        aws_only = {k: v for k, v in usage(paths[method]["success"]).items() if not k.startswith("stripe.")}
        rates = [(q.name, *sustained_rate(aws_only, q.limits)) for q in sets]
        out.append(f"- {method} capture: " + "; ".join(
            f"{name} quotas **{_rate(rate)}**/s, bound by {describe(binding, limits)}"
            for (name, rate, binding), limits in zip(rates, (q.limits for q in sets), strict=True)
        ) + ".")  # fmt: skip

    success = {method: usage(paths[method]["success"]) for method in CAPTURE_METHODS}
    out += [
        "",
        "What one payment on the success path uses, and the rate each quota alone would allow (default quotas):",
        "",
        "| Quota | " + " | ".join(f"{m}: per payment → payments/s" for m in CAPTURE_METHODS) + " |",
        "| --- |" + " --- |" * len(CAPTURE_METHODS),
    ]
    limits = sets[0].limits
    for key in sorted(set().union(*success.values())):
        cells = []
        for method in CAPTURE_METHODS:
            used, limit = success[method].get(key, 0), limit_of(limits, key)
            alone = "no quota" if limit is None else f"{limit / used:,.1f}" if used else "–"
            cells.append(f"{used:g} → {alone}")
        family, _, detail = key.partition(":")
        out.append(f"| {_NAMES.get(family, family)}{f': {detail}' if detail else ''} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Lambda concurrency by Little's law (concurrency = payments/s × execution-seconds per payment), with each "
        "function's assumed duration in AWS (*Cost per million payments*: a Stripe request ~300 ms, a DynamoDB "
        "request ~10 ms; an assumption, not a measurement: the local durations, in-process and without network, are "
        "in the same table). The webhook's execution-seconds count against its reserved concurrency.",
        "",
        "Quotas (us-east-1), and the raised set, which is assumed (what one would ask for), not documented:",
        "",
        "| Quota | Default | Bucket | As documented | Source | Raised |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, quota in DOCUMENTED.items():
        rate, note = RAISED_NOTES[key]
        burst = f"{quota.burst:,g}" if quota.burst else ""
        out.append(f"| {_NAMES[key]} | {quota.rate:,g} {quota.unit} | {burst} | {quota.quoted} | {quota.source} "
                   f"| {rate:,g}: {note} |")  # fmt: skip
    rate, note = RAISED_NOTES["lambda.webhook_concurrency"]
    out.append(f"| {_NAMES['lambda.webhook_concurrency']} | {webhook_reserved_concurrency()} | | "
               f"template.yaml `WebhookReservedConcurrency` default | template.yaml | {rate:,g}: {note} |")  # fmt: skip

    local = Quotas.scaled(LOCAL_SCALE)
    out += [
        "",
        f"**Locally**, with the quotas on at scale {LOCAL_SCALE:g} (`Quotas.scaled({LOCAL_SCALE:g})`, and the "
        "stack's Stripe budget scaled alike, `quotas.parameters()`; the local runtime enforces Stripe's limits, the "
        "budget, the StartExecution and SendTaskSuccess buckets and the per-item write rate, nothing else), the same "
        "model predicts:",
        "",
    ]
    for method in CAPTURE_METHODS:
        rate, binding = sustained_rate(usage(paths[method]["success"]), local.model_limits())
        out.append(f"- {method} capture, success path: **{_rate(rate)} payments/s**, bound by "
                   f"{describe(binding, local.model_limits())}/s.")  # fmt: skip
    return "\n".join(out + ["", END]) + "\n"


def line(paths: Mapping[str, Mapping[str, PathCounts]]) -> str:
    """One summary line: the success path's sustained rate and binding quota, per capture method, default quotas."""
    fields = []
    for method in CAPTURE_METHODS:
        rate, binding = sustained_rate(usage(paths[method]["success"]), default_limits())
        fields.append(f"payments_per_s_{method}={rate:.1f} binding_{method}={binding.replace(' ', '_')}")
    return "capacity: " + " ".join(fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--local-check", action="store_true", help="also run payments with the local quotas on")
    parser.add_argument("--scale", type=float, default=LOCAL_SCALE, help="the local quotas' scale (--local-check)")
    parser.add_argument("--payments", type=int, default=60, help="card payments per capture method (--local-check)")
    parser.add_argument("--window", type=int, default=12, help="payments in flight at most (--local-check)")
    args = parser.parse_args(argv)

    from bench import payments, report
    from bench.__main__ import progress
    from bench.local_stack import local_stack

    paths = {}
    for method in CAPTURE_METHODS:
        progress(f"payment paths on the local stack, CaptureMethod={method}")
        with local_stack(CaptureMethod=method) as stack:
            paths[method] = payments.measure_paths(stack, progress)
    command = "python -m bench.capacity" + (" " + " ".join(argv) if argv else "")
    report.write(args.output, render(paths, command), BEGIN, END)
    print(line(paths), flush=True)
    if args.local_check:
        quotas = Quotas.scaled(args.scale)
        for method in CAPTURE_METHODS:
            predicted, binding = sustained_rate(usage(paths[method]["success"]), quotas.model_limits())
            progress(f"{args.payments} card payments, CaptureMethod={method}, quotas at {args.scale:g}, "
                     f"{args.window} in flight; the model predicts {predicted:.2f}/s ({binding})")  # fmt: skip
            with local_stack(quotas, CaptureMethod=method, PaymentTimeoutSeconds="600", **quotas.parameters()) as stack:
                payments.warm_up(stack)
                time.sleep(3)  # the buckets the warm-up drew on fill up again
                run = payments.throughput(stack, args.payments, args.window, deadline=600, drain=120)
                refused = sum(1 for r in stack.stripe.requests if r.status == 429)
                throttled = sum(stack.cloud.aws.throttled.values())
            print(
                f"local-check: capture={method} scale={args.scale:g} predicted={predicted:.2f} "
                f"measured={run.per_second:.2f} finished={run.finished}/{run.target} succeeded={run.succeeded} "
                f"stripe_429={refused} aws_throttled={throttled}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
