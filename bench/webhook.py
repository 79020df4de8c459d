"""Webhook cold start (fresh process to first response) and warm latency, ours against the naive handler.

Each run is a fresh `python -I -S` process (bench/webhook_child.py) that sees only a Lambda-like
path: the function's directory, the layer's source and its dependencies, and the runtime's boto3
(bench/lambda_site.py). AWS is answered in-process, the same way for both handlers. Cold start is
measured from just before the process is spawned to the moment the handler has returned its
first response. Each round runs both handlers back to back (in alternating order); the ratio is
the median over the rounds of ours / naive.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import lambda_site
from local_runtime.template import ROOT, Template

BENCH = Path(__file__).resolve().parent
SITE = ROOT / ".local" / "bench" / "lambda-site"
HANDLERS = {"ours": ROOT / "functions" / "stripe_webhook", "naive": BENCH / "naive_webhook"}
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
}  # fmt: skip
# What Lambda adds when the function runs with `Tracing: Active` (X-Ray segments go to a UDP port on loopback).
IN_LAMBDA_TRACED = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "stripe-payments-StripeWebhookFunction",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
}
SIGNING_SECRET = "whsec_bench_cold_start"


@dataclass
class Run:
    total_ms: float  # spawn to first response
    cpu_ms: float  # CPU time of the process up to its first response
    import_ms: float
    first_call_ms: float
    status: int
    aws_calls: list[str]
    modules: int
    heavy_modules: list[str]


@dataclass
class ColdStart:
    setting: str
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def median(self, handler: str, attribute: str = "total_ms") -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs[handler])

    def spread(self, handler: str) -> tuple[float, float]:
        values = [run.total_ms for run in self.runs[handler]]
        return min(values), max(values)

    @property
    def ratio(self) -> float:
        """Median of ours / naive over the rounds: each round runs the two back to back, so both see the
        same load on the machine."""
        return self._paired("total_ms")

    @property
    def cpu_ratio(self) -> float:
        """The same in CPU time, which leaves out the time spent waiting for a core on a busy machine."""
        return self._paired("cpu_ms")

    @property
    def ratio_quartiles(self) -> tuple[float, float]:
        """The middle half of the rounds' ratios: how much one round's ratio varies on this machine."""
        first, _, third = statistics.quantiles(self._ratios("total_ms"), n=4)
        return first, third

    def _paired(self, attribute: str) -> float:
        return statistics.median(self._ratios(attribute))

    def _ratios(self, attribute: str) -> list[float]:
        rounds = zip(self.runs["ours"], self.runs["naive"], strict=True)
        return [getattr(ours, attribute) / getattr(naive, attribute) for ours, naive in rounds]


@dataclass
class Warm:
    p50: dict[str, float]
    p99: dict[str, float]
    aws_calls: dict[str, list[str]]
    calls: int


def _environment(lambda_traced: bool) -> dict[str, str]:
    spec = Template("stripe-payments").functions()["StripeWebhookFunction"]
    environment = {**spec.environment, **FAKE_AWS}
    if lambda_traced:
        environment.update(IN_LAMBDA_TRACED)
    return environment


def _run_child(handler: str, environment: dict[str, str], workdir: Path, warm_calls: int = 0) -> tuple[Run, dict]:
    config = {
        "environment": environment,
        "path": [str(HANDLERS[handler]), str(ROOT / "layers" / "payments"), str(SITE)],
        "signing_secret": SIGNING_SECRET,
        "app_id": environment.get("APP_ID", "stripe-payments"),
        "warm_calls": warm_calls,
    }
    config_path, result_path = workdir / f"{handler}.json", workdir / f"{handler}-result.json"
    config_path.write_text(json.dumps(config))
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-I", "-S", str(BENCH / "webhook_child.py"), str(config_path), str(result_path)]
    spawned = time.time_ns()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir)
    if done.returncode != 0:
        raise RuntimeError(f"{handler} handler process failed:\n{done.stderr[-2000:]}")
    result = json.loads(result_path.read_text())
    run = Run(
        total_ms=(result["answered_ns"] - spawned) / 1e6,
        cpu_ms=result["cpu_ms"],
        import_ms=result["import_ms"],
        first_call_ms=result["first_call_ms"],
        status=result["status"],
        aws_calls=result["cold_aws_calls"],
        modules=result["modules"],
        heavy_modules=result["heavy_modules"],
    )
    if run.status != 200:
        raise RuntimeError(f"{handler} answered {run.status}: {result['body']}")
    return run, result


def prepare() -> None:
    lambda_site.build(SITE)


def cold_start(runs: int, lambda_traced: bool = False) -> ColdStart:
    environment = _environment(lambda_traced)
    setting = "in Lambda, tracing on" if lambda_traced else "fresh process"
    result = ColdStart(setting, {handler: [] for handler in HANDLERS})
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        workdir = Path(tmp)
        for handler in HANDLERS:  # untimed: compiles what has no bytecode yet, fills the page cache
            _run_child(handler, environment, workdir)
        for index in range(runs):
            order = list(HANDLERS) if index % 2 == 0 else list(reversed(HANDLERS))
            for handler in order:
                result.runs[handler].append(_run_child(handler, environment, workdir)[0])
    return result


def warm_latency(calls: int) -> Warm:
    environment = _environment(lambda_traced=False)
    p50, p99, aws = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        for handler in HANDLERS:
            _, result = _run_child(handler, environment, Path(tmp), warm_calls=calls)
            latencies = sorted(result["warm_ms"])
            p50[handler] = statistics.median(latencies)
            p99[handler] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            aws[handler] = result["warm_aws_calls"]
            if result["warm_statuses"] != [200]:
                raise RuntimeError(f"{handler} warm answers: {result['warm_statuses']}")
    return Warm(p50, p99, aws, calls)
