"""The benchmark's bookkeeping (not its measurements, which are never timed tests): report and units."""

from collections import Counter
from dataclasses import replace
from pathlib import Path

from bench import report
from bench.package_size import MIB, PackageSizes
from bench.payments import CAPTURE_METHODS, PATHS, PathCounts, Throughput, WebhookPath, dynamodb_item_size
from bench.webhook import ColdStart, Run, Warm


def test_the_run_rewrites_only_its_own_section_of_benchmarks_md(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\nWritten by hand.\n\n{report.BEGIN}\nold numbers\n{report.END}\n\nAlso by hand.\n")

    report.write(path, f"{report.BEGIN}\nnew numbers\n{report.END}\n")

    assert path.read_text() == (
        f"# Benchmarks\n\nWritten by hand.\n\n{report.BEGIN}\nnew numbers\n{report.END}\n\nAlso by hand.\n"
    )


def test_a_missing_benchmarks_md_is_created_with_the_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"

    report.write(path, f"{report.BEGIN}\nnumbers\n{report.END}\n")

    assert f"{report.BEGIN}\nnumbers\n{report.END}" in path.read_text()


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    item = {"orderId": {"S": "order-1"}, "amount": {"N": "2500"}, "paid": {"BOOL": True}}

    # 7 + 7 (name + string), 6 + 3 (name + 4 digits: 1 + 2 bytes), 4 + 1 (name + boolean)
    assert dynamodb_item_size(item) == 28


def _counts(path: str, method: str, final_state: str, states: int, stripe_calls: int) -> PathCounts:
    return PathCounts(
        path=path, scenario=PATHS[path], capture_method=method, final_state=final_state, ok=True,
        states=[f"State{i}" for i in range(states)], invocations=Counter({"AcceptOrderFunction": 1}), local_ms={},
        aws=Counter(), dynamodb_reads=0, dynamodb_writes=1, write_units=1, read_units=0.0, direct_dynamodb_tasks=0,
        stripe_calls=["GET /v1/payment_intents/{id}"] * stripe_calls,
        deliveries=Counter({"payment_intent.succeeded": 1, "charge.succeeded": 1}), log_bytes=0,
    )  # fmt: skip


def _results() -> report.Results:
    ends = {"manual": ("PaymentSucceeded", "OutOfStock"), "automatic": ("PaymentSucceeded", "Refunded")}
    figures = {"manual": (9, 10, 5), "automatic": (7, 8, 3)}  # transitions: success, out of stock; Stripe calls
    paths = {
        method: {
            path: _counts(path, method, ends[method][path == "out of stock"],
                          figures[method][path == "out of stock"], figures[method][2])
            for path in PATHS
        }
        for method in CAPTURE_METHODS
    }  # fmt: skip
    run = Run(500, 500, 300, 100, 200, [], 600, ["boto3"])
    cold = ColdStart("fresh process", {"ours": [run] * 4, "naive": [replace(run, total_ms=1000, cpu_ms=1000)] * 4})
    warm = Warm({"ours": 2.0, "naive": 5.0}, {"ours": 4.0, "naive": 9.0}, {"ours": [], "naive": []}, 1000)
    webhook = WebhookPath(200, "resumed", ["dynamodb:UpdateItem"], "payment_intent.amount_capturable_updated")
    packages = PackageSizes("estimated", {"StripeWebhookFunction": 4096}, 12 * MIB, {"stripe": 7 * MIB})
    return report.Results(
        cold, cold, warm, paths, webhook, Throughput(10, 10, 10, 2.0, 5, 60), packages, 300.0, "make bench"
    )


def test_every_path_is_reported_under_both_capture_methods() -> None:
    text = report.render(_results())

    per_path = text.split("### Per payment, on each path")[1].split("### Cost per million payments")[0]
    out_of_stock = next(line for line in per_path.splitlines() if line.startswith("| out of stock |"))
    assert "OutOfStock / Refunded" in out_of_stock
    assert "| 10 / 8 (+2) |" in out_of_stock  # transitions, manual / automatic (what manual adds)
    assert "| 5 / 3 (+2) |" in out_of_stock  # Stripe API calls
    costs_part = text.split("### Cost per million payments")[1]
    for part in (per_path, costs_part):
        assert "#### CaptureMethod manual (the template's default)" in part
        assert "#### CaptureMethod automatic" in part
    assert "| State transitions, happy path | **9** with manual capture (the default); 7 with automatic |" in text


def test_the_summary_line_keeps_its_fields_and_adds_the_automatic_ones() -> None:
    fields = dict(item.split("=") for item in _results().line().removeprefix("bench: ").split())

    assert list(fields) == [
        "cold_start_ratio", "webhook_aws_calls", "transitions_happy", "transitions_happy_automatic",
        "usd_per_million", "usd_per_million_automatic", "max_package_mb", "local_payments_per_s",
    ]  # fmt: skip
    assert (fields["transitions_happy"], fields["transitions_happy_automatic"]) == ("9", "7")
    assert float(fields["usd_per_million"]) > float(fields["usd_per_million_automatic"])


def test_the_summary_line_ends_with_the_peak_runs_fields() -> None:
    from collections import Counter

    from bench.peak import PeakRun, Verdict

    verdict = Verdict(offered=100, offered_per_s=9.9, completed=100, completed_per_s=0.91, failed_by_throttle=0,
                      max_wait_s=96.4, max_start_wait_s=0.3, queued=0, parked=12, final_states=Counter())  # fmt: skip
    results = _results()
    results.peak = PeakRun(0.15, 0.97, "stripe.budget", verdict, 10.0, 110.0, 0, Counter())

    fields = dict(item.split("=") for item in results.line().removeprefix("bench: ").split())

    assert list(fields)[-5:] == [
        "local_payments_per_s", "peak_offered_per_s", "peak_completed_per_s", "failed_by_throttle", "max_wait_s",
    ]  # fmt: skip
    assert (fields["peak_completed_per_s"], fields["failed_by_throttle"], fields["max_wait_s"]) == ("0.91", "0", "96.4")
