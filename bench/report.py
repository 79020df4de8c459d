"""BENCHMARKS.md: the run writes the section between the markers; everything outside them is kept."""

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import costs, lambda_site
from bench.package_size import MIB, PackageSizes
from bench.payments import CAPTURE_METHODS, PathCounts, Throughput, WebhookPath
from bench.peak import PeakRun
from bench.webhook import ColdStart, Warm
from local_runtime.template import ROOT

BEGIN = "<!-- bench:begin: written by `make bench`; edit outside these markers -->"
END = "<!-- bench:end -->"
TARGETS = {"cold_start_ratio": 0.5, "webhook_aws_calls": 2, "max_package_mb": 10.0}
DEFAULT = CAPTURE_METHODS[0]  # the template's CaptureMethod


@dataclass
class Results:
    cold: ColdStart
    cold_traced: ColdStart
    warm: Warm
    paths: dict[str, dict[str, PathCounts]]  # capture method -> path -> counts
    webhook: WebhookPath
    throughput: Throughput
    packages: PackageSizes
    seconds: float
    command: str
    peak: PeakRun | None = None  # the peak run (bench/peak.py); its fields end the line

    @property
    def memory(self) -> dict[str, int]:
        return costs.memory_mb()

    def cost(self, path: str, method: str = DEFAULT) -> costs.Cost:
        return costs.our_cost(self.paths[method][path], self.memory)

    def line(self) -> str:
        return (
            f"bench: cold_start_ratio={self.cold.ratio:.3f} webhook_aws_calls={len(self.webhook.calls)} "
            f"transitions_happy={self.paths[DEFAULT]['success'].transitions} "
            f"transitions_happy_automatic={self.paths['automatic']['success'].transitions} "
            f"usd_per_million={self.cost('success').per_million():.2f} "
            f"usd_per_million_automatic={self.cost('success', 'automatic').per_million():.2f} "
            f"max_package_mb={self.packages.max_function / MIB:.3f} "
            f"local_payments_per_s={self.throughput.per_second:.2f}"
            + (f" {self.peak.fields()}" if self.peak else "")
        )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f", {memory_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = ""
    system = f"{platform.system()} {platform.release()}, Python {sys.version.split()[0]}"
    return f"{cpu}, {os.cpu_count()} CPUs{memory}, {system}"


def revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    return sha + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _ok(holds: bool) -> str:
    return "met" if holds else "**not met**"


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _row(label: str, values: list[object]) -> str:
    return f"| {label} | " + " | ".join(str(v) for v in values) + " |"


def _versus(values: list[int] | list[float], spec: str = "d") -> str:
    """manual / automatic (what manual adds)"""
    first, second = values
    return f"{first:,{spec}} / {second:,{spec}} ({first - second:+,{spec}})"


def _method(method: str) -> str:
    return f"CaptureMethod {method}" + (" (the template's default)" if method == DEFAULT else "")


def render(r: Results) -> str:
    paths = list(r.paths[DEFAULT])
    success = {method: r.paths[method]["success"] for method in CAPTURE_METHODS}
    happy_cost = {method: r.cost("success", method).per_million() for method in CAPTURE_METHODS}
    out: list[str] = [BEGIN, "", "## Results", ""]
    out += [
        f"`{r.command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {r.seconds:.0f} s; git {revision()}.",
        f"Machine: {machine()}.",
        "",
        "| Measure | Result | Target | |",
        "| --- | --- | --- | --- |",
        f"| Webhook cold start, ours / naive ({r.cold.setting}, median of {len(r.cold.runs['ours'])} rounds) "
        f"| **{r.cold.ratio:.3f}** (medians {_ms(r.cold.median('ours'))} / {_ms(r.cold.median('naive'))}; "
        f"rounds' middle half {r.cold.ratio_quartiles[0]:.2f}–{r.cold.ratio_quartiles[1]:.2f}) | ≤ 0.5 "
        f"| {_ok(r.cold.ratio <= TARGETS['cold_start_ratio'])} |",
        f"| AWS calls on the webhook's critical path, per event (warm, secret cached) | **{len(r.webhook.calls)}**: "
        f"{', '.join(r.webhook.calls)} (`{r.webhook.event}`, answered {r.webhook.status}, {r.webhook.result}) | ≤ 2 "
        f"| {_ok(len(r.webhook.calls) <= TARGETS['webhook_aws_calls'])} |",
        f"| Largest function package after `sam build`, unpacked | **{r.packages.max_function / MIB:.3f} MB** "
        f"| ≤ 10 MB | {_ok(r.packages.max_function / MIB <= TARGETS['max_package_mb'])} |",
        f"| The same with the layer it runs with | {(r.packages.max_function + r.packages.layer) / MIB:.1f} MB "
        "| (250 MB limit) | see *Package size* |",
        f"| State transitions, happy path | **{success[DEFAULT].transitions}** with {DEFAULT} capture (the default); "
        f"{success['automatic'].transitions} with automatic | | |",
        f"| Cost per million payments, happy path | **${_usd(happy_cost[DEFAULT])}** with {DEFAULT} capture; "
        f"${_usd(happy_cost['automatic'])} with automatic | | |",
        f"| Local throughput | **{r.throughput.per_second:.2f} payments/s** "
        f"({r.throughput.finished} of {r.throughput.target} in {r.throughput.seconds:.0f} s) | | |",
        "",
    ]

    out += ["### Webhook", "", "Cold start, fresh process to first response (median, min–max in brackets):", ""]
    out += [
        "| Setting | Ours | Naive | Ours / naive (median of rounds) | Same, CPU time | Ours: import + first call "
        "| Naive: import + first call |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cold in (r.cold, r.cold_traced):
        (omin, omax), (nmin, nmax) = cold.spread("ours"), cold.spread("naive")
        out.append(
            f"| {cold.setting} ({len(cold.runs['ours'])} rounds) "
            f"| {_ms(cold.median('ours'))} ({omin:.0f}–{omax:.0f}) "
            f"| {_ms(cold.median('naive'))} ({nmin:.0f}–{nmax:.0f}) | {cold.ratio:.3f} | {cold.cpu_ratio:.3f} "
            f"| {cold.median('ours', 'import_ms'):.0f} + {cold.median('ours', 'first_call_ms'):.0f} ms "
            f"| {cold.median('naive', 'import_ms'):.0f} + {cold.median('naive', 'first_call_ms'):.0f} ms |"
        )
    out += [
        "",
        f"Modules loaded at first response: ours {r.cold.runs['ours'][0].modules} "
        f"({', '.join(r.cold.runs['ours'][0].heavy_modules)}), naive {r.cold.runs['naive'][0].modules} "
        f"({', '.join(r.cold.runs['naive'][0].heavy_modules)}).",
        "",
        f"Warm, in-process, {r.warm.calls} signed `payment_intent.succeeded` events with a stored token: "
        f"ours p50 {r.warm.p50['ours']:.2f} ms, p99 {r.warm.p99['ours']:.2f} ms; "
        f"naive p50 {r.warm.p50['naive']:.2f} ms, p99 {r.warm.p99['naive']:.2f} ms. "
        f"AWS calls per event: ours {len(r.warm.aws_calls['ours'])} ({', '.join(r.warm.aws_calls['ours'])}); "
        f"naive {len(r.warm.aws_calls['naive'])} ({', '.join(r.warm.aws_calls['naive'])}).",
        "",
    ]

    out += [
        "### Per payment, on each path",
        "",
        f"Each path under both capture methods (template parameter `CaptureMethod`): {' / '.join(CAPTURE_METHODS)}, "
        f"and in brackets what {DEFAULT} capture adds.",
        "",
        "| Path | Ends in | State transitions | Lambda invocations | Stripe API calls | Webhook requests "
        "| Cost per million payments (USD) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in paths:
        pair = [r.paths[method][path] for method in CAPTURE_METHODS]
        out.append(_row(path, [
            " / ".join(c.final_state + ("" if c.ok else " (MISMATCH)") for c in pair),
            _versus([c.transitions for c in pair]),
            _versus([c.lambda_invocations for c in pair]),
            _versus([len(c.stripe_calls) for c in pair]),
            _versus([c.webhook_requests for c in pair]),
            _versus([r.cost(path, method).per_million() for method in CAPTURE_METHODS], ".2f"),
        ]))  # fmt: skip
    out += [""]
    for method in CAPTURE_METHODS:
        out += [f"#### {_method(method)}", ""] + _counts_table(list(r.paths[method].values()))

    out += ["### Cost per million payments (USD)", ""]
    for method in CAPTURE_METHODS:
        out += [f"#### {_method(method)}", ""] + _cost_table(r, method)
    invocations = costs.billed_invocations(success[DEFAULT])
    doubled = costs.lambda_cost(invocations, r.memory, 2.0) - costs.lambda_cost(invocations, r.memory)
    out += [
        "Step Functions is most of the bill: a Standard workflow is billed per state entered, so the way to cut "
        "cost is fewer states, not fewer Lambdas. Lambda durations are assumed (below); doubling all of them moves "
        f"the happy-path total ({DEFAULT} capture) by ${_usd(doubled * 1e6)} per million.",
        "",
        "Prices (us-east-1, on-demand, free tiers left out):",
        "",
        "| Item | Price | Source |",
        "| --- | --- | --- |",
    ]
    for price in costs.PRICES.values():
        out.append(f"| {price.unit} | {price.quoted} | {price.source} |")
    out += ["", "Lambda: memory from template.yaml, duration assumed (warm, in AWS); the local mean is in-process:", ""]
    out += ["| Function | Memory | Assumed duration | Local mean |", "| --- | --- | --- | --- |"]
    local: dict[str, list[float]] = {}
    for counts in r.paths.values():
        for c in counts.values():
            for name, ms in c.local_ms.items():
                local.setdefault(name, []).append(ms)
    for name, ms in costs.ASSUMED_MS.items():
        measured = f"{sum(local[name]) / len(local[name]):.0f} ms" if name in local else "not run"
        out.append(f"| {name} | {r.memory.get(name, 0)} MB | {ms} ms | {measured} |")
    out += [""]

    out += ["### Package size", "", f"Method: {r.packages.method}. Unpacked, MB = 2^20 bytes.", ""]
    out += ["| Function | Function package | With PaymentsLayer |", "| --- | --- | --- |"]
    for name, size in sorted(r.packages.functions.items()):
        out.append(f"| {name} | {size / MIB:.3f} MB | {(size + r.packages.layer) / MIB:.1f} MB |")
    biggest = sorted(r.packages.layer_parts.items(), key=lambda item: -item[1])[:6]
    out += [
        "",
        f"PaymentsLayer: {r.packages.layer / MIB:.1f} MB; largest entries: "
        + ", ".join(f"{name} {size / MIB:.1f} MB" for name, size in biggest)
        + ". It holds what the python3.13 runtime lacks (boto3 and its dependencies come with the runtime), without "
        "what its Makefile removes: " + ", ".join(f"`{path}`" for path in lambda_site.removed_from_layer()) + ".",
        "",
    ]

    t = r.throughput
    out += [
        "### Local throughput",
        "",
        f"{t.target} card payments (`pm_card_visa`) through the local stack (moto, in-process handlers, HTTP "
        f"webhooks), at most {t.window} in flight: {t.finished} finished ({t.succeeded} succeeded) in "
        f"{t.seconds:.1f} s = **{t.per_second:.2f} payments/s**"
        + (
            "."
            if t.finished >= t.target
            else f"; no new payment started after {t.deadline:.0f} s, those in flight finished."
        ),
        "",
        "```",
        r.line(),
        "```",
        "",
        END,
    ]
    return "\n".join(out) + "\n"


def _counts_table(counts: list[PathCounts]) -> list[str]:
    """What one payment on each path does, in counts; then each path's states and Stripe calls."""
    out = ["| | " + " | ".join(c.path for c in counts) + " |", "| --- |" + " --- |" * len(counts)]
    out += [
        _row("Demo scenario", [f"{c.scenario} → {c.final_state}{'' if c.ok else ' (MISMATCH)'}" for c in counts]),
        _row("State transitions", [c.transitions for c in counts]),
        _row("Lambda invocations", [c.lambda_invocations for c in counts]),
        _row("… by function", [_by_function(c) for c in counts]),
        _row("DynamoDB requests: reads / writes", [f"{c.dynamodb_reads} / {c.dynamodb_writes}" for c in counts]),
        _row("… of which by the state machine directly", [c.direct_dynamodb_tasks for c in counts]),
        _row("DynamoDB request units: read / write", [f"{c.read_units:g} / {c.write_units}" for c in counts]),
        _row("Stripe API calls", [len(c.stripe_calls) for c in counts]),
        _row("Webhook requests (subscribed events)", [c.webhook_requests for c in counts]),
        _row("… deliveries locally (every event type)", [sum(c.deliveries.values()) for c in counts]),
        _row("SendTaskSuccess", [c.calls("stepfunctions", "SendTaskSuccess") for c in counts]),
        _row("SES e-mails", [c.calls("sesv2", "SendEmail") for c in counts]),
        _row("Secrets Manager reads", [c.calls("secretsmanager", "GetSecretValue") for c in counts]),
        "",
    ]
    out += [f"- {c.path}: {' → '.join(c.states)}; Stripe: {', '.join(c.stripe_calls) or 'none'}." for c in counts]
    return out + [""]


def _by_function(c: PathCounts) -> str:
    """Billed invocations by function, the webhook's as in production (one per subscribed delivery)."""
    functions = [
        f"{n.removesuffix('Function')} {k}" for n, k in sorted(c.invocations.items()) if n != "StripeWebhookFunction"
    ]
    return ", ".join([*functions, f"StripeWebhook {c.webhook_requests}"])


def _cost_table(r: Results, method: str) -> list[str]:
    """Each path's cost per million payments under one capture method, item by item, and the obvious design's."""
    counts = r.paths[method]
    paths = list(counts)
    ours = {p: r.cost(p, method) for p in paths}
    readers = costs.secret_readers()
    obvious = {p: costs.obvious_cost(counts[p], r.memory, readers) for p in paths}
    noted = {p: costs.noted(counts[p]) for p in paths}
    out = ["| | " + " | ".join(paths) + " |", "| --- |" + " --- |" * len(paths)]
    out += [_row(item, [_usd(ours[p].per_million(item)) for p in paths]) for item in ours[paths[0]].lines]
    out += [
        _row("**Total**", [f"**{_usd(ours[p].per_million())}**" for p in paths]),
        _row("Obvious design (same states)", [_usd(obvious[p].cost.per_million()) for p in paths]),
        _row(
            "… it adds",
            [
                f"+{o.extra_invocations} Lambda, +{o.extra_reads} reads, {o.secret_reads} secret reads"
                for o in obvious.values()
            ],
        ),
        _row(
            "… difference",
            [f"{(obvious[p].cost.total - ours[p].total) / obvious[p].cost.total:.1%} cheaper" for p in paths],
        ),
    ]
    out += [_row(f"*Not included:* {item}", [_usd(noted[p][item] * 1e6) for p in paths]) for item in noted[paths[0]]]
    return out + [""]


def write(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section between `begin` and `end` (the results' by default) with `section`, or append it."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
