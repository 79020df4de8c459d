"""`make bench`: measure the webhook, each payment path, the packages and local throughput; write BENCHMARKS.md.

Progress goes to stderr; on stdout the capacity model's line (bench/capacity.py, which also rewrites its own
section of BENCHMARKS.md), then, last, the summary, `bench: cold_start_ratio=X
webhook_aws_calls=N transitions_happy=N transitions_happy_automatic=N usd_per_million=X
usd_per_million_automatic=X max_package_mb=X local_payments_per_s=X peak_offered_per_s=X peak_completed_per_s=Y
failed_by_throttle=N max_wait_s=Z` (happy path: CaptureMethod manual, the template's default, and automatic; the
peak fields from the peak run, bench/peak.py, whose own `peak:` line comes just before).
Not part of `make test`: these are measurements, not timed tests.
"""

import argparse
import sys
import time
from pathlib import Path

from local_runtime.template import ROOT


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=31, help="cold-start rounds (each runs both handlers)")
    parser.add_argument("--traced-runs", type=int, default=5, help="cold-start rounds, in Lambda with tracing on")
    parser.add_argument("--warm-calls", type=int, default=1000, help="warm webhook invocations per handler")
    parser.add_argument("--payments", type=int, default=1000, help="payments for the throughput run")
    parser.add_argument("--window", type=int, default=25, help="payments in flight at most during the throughput run")
    parser.add_argument("--deadline", type=float, default=600, help="seconds the throughput run may take at most")
    parser.add_argument("--peak-scale", type=float, default=None, help="the peak run's quota scale (bench/peak.py)")
    parser.add_argument("--peak-window", type=float, default=None, help="seconds the peak run offers orders over")
    parser.add_argument("--no-build", action="store_true", help="estimate package sizes instead of running sam build")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = time.monotonic()

    from bench import capacity, package_size, payments, peak, report, webhook
    from bench.local_stack import local_stack

    progress("building the Lambda-like import path")
    webhook.prepare()
    progress(f"webhook cold start, fresh process, {args.runs} rounds")
    cold = webhook.cold_start(args.runs)
    progress(f"  ours {cold.median('ours'):.0f} ms, naive {cold.median('naive'):.0f} ms, ratio {cold.ratio:.3f}")
    progress(f"webhook cold start, in Lambda with tracing on, {args.traced_runs} rounds")
    cold_traced = webhook.cold_start(args.traced_runs, lambda_traced=True)
    progress(f"warm webhook latency, {args.warm_calls} events each")
    warm = webhook.warm_latency(args.warm_calls)

    paths = {}
    for method in payments.CAPTURE_METHODS:
        progress(f"payment paths on the local stack, CaptureMethod={method}")
        with local_stack(CaptureMethod=method) as stack:
            paths[method] = payments.measure_paths(stack, progress)
    progress("the webhook's critical path and throughput, on the default stack")
    with local_stack(PaymentTimeoutSeconds="600") as stack:
        payments.warm_up(stack)
        critical = payments.webhook_critical_path(stack)
        progress(f"  webhook critical path ({critical.event}): {', '.join(critical.calls)}")
        progress(f"throughput: {args.payments} payments, {args.window} in flight, deadline {args.deadline:.0f} s")
        throughput = payments.throughput(stack, args.payments, args.window, args.deadline)
    progress(f"  {throughput.finished} finished in {throughput.seconds:.0f} s")
    command = "python -m bench " + " ".join(argv) if argv else "make bench"
    peak_run = peak.peak(
        paths[payments.CAPTURE_METHODS[0]], args.peak_scale or peak.SCALE, peak.OVERLOAD,
        args.peak_window or peak.WINDOW_SECONDS, progress, command,
    )  # fmt: skip
    progress(f"  {peak_run.line()}")

    if args.no_build:
        packages = package_size.estimate("estimated from the dev venv's installed distributions (--no-build)")
    else:
        progress("sam build into a temporary directory")
        packages = package_size.measure()
    progress(f"  {packages.method}")

    results = report.Results(
        cold, cold_traced, warm, paths, critical, throughput, packages, time.monotonic() - started, command, peak_run
    )
    report.write(args.output, report.render(results))
    report.write(args.output, capacity.render(paths, command), capacity.BEGIN, capacity.END)
    report.write(args.output, peak.render(peak_run), peak.BEGIN, peak.END)
    progress(f"wrote {args.output}")
    print(capacity.line(paths), flush=True)
    print(peak_run.line(), flush=True)
    print(results.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
