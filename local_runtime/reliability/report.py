"""What a run found under one CaptureMethod: the report, and its summary line (`reliability: capture=manual
schedules=N ... stranded_reservations=N`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from local_runtime.reliability.bad_starts import StartResult
from local_runtime.reliability.invariants import Verdict
from local_runtime.reliability.load import LoadReport
from local_runtime.reliability.webhook_targets import CaseResult
from local_runtime.scenarios import AUTHORISATION_INVARIANTS

# The summary's counts, in its order: each is a field of `Verdict` too.
PROBLEMS = (
    "lost", "double_charged", "unexpected_status", "orphaned", "wrongly_refunded", "duplicate_orders",
    *AUTHORISATION_INVARIANTS,
)  # fmt: skip


@dataclass
class Results:
    capture_method: str
    schedules: list[Verdict] = field(default_factory=list)
    schedule_seconds: float = 0.0
    schedule_stock: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)  # Stripe's events the queue gave up on
    sweeps: int = 0
    sweep_seconds: float = 0.0
    sweep_failures: list[str] = field(default_factory=list)
    webhook_cases: list[CaseResult] = field(default_factory=list)
    webhook_targets: list[Verdict] = field(default_factory=list)
    bad_starts: list[StartResult] = field(default_factory=list)
    load: LoadReport | None = None
    executions: int = 0

    def verdicts(self) -> list[Verdict]:
        return self.schedules + self.webhook_targets + (self.load.failed if self.load else [])

    def count(self, problem: str) -> int:
        """How many orders broke this kind of rule (and, for lost, stock lines and dead letters; for
        unexpected_status, bad inputs)."""
        found = sum(1 for v in self.verdicts() if getattr(v, problem))
        if problem == "lost":
            found += len(self.schedule_stock) + len(self.dead_letters)
            found += len(self.load.stock_problems) if self.load else 0
        if problem == "unexpected_status":
            found += sum(1 for c in self.webhook_cases if not c.ok) + sum(1 for s in self.bad_starts if not s.ok)
        return found

    @property
    def failed(self) -> bool:
        return any(self.count(problem) for problem in PROBLEMS)

    def summary_line(self) -> str:
        return (
            f"reliability: capture={self.capture_method} schedules={len(self.schedules)} executions={self.executions} "
            f"concurrent={self.load.count if self.load else 0} "
            f"bad_inputs={len(self.webhook_cases) + len(self.bad_starts)} "
            + " ".join(f"{problem}={self.count(problem)}" for problem in PROBLEMS)
        )


def _what_was_tried(verdicts: list[Verdict]) -> str:
    """How often a step parked, the reconciler repaired an order, a second start came, a day passed at Stripe, a
    step ran again."""
    notes = [note for verdict in verdicts for note in verdict.path if note.startswith("[")]
    repairs = [n for n in notes if n.startswith("[reconciler") and ("fulfilled=" in n or "refunded=" in n)]
    second_starts = sum(1 for verdict in verdicts if "started again" in verdict.name)
    days = sum(1 for note in notes if note.startswith("[a day passed"))
    reruns = sum(1 for note in notes if note.startswith("[rerun"))
    parked = [v for v in verdicts if any(step.startswith("ParkWhileUnavailable") for step in v.path)]
    went_on = sum(1 for v in parked if v.final_state != "NeedsAttention")
    return (
        f"{len(parked)} parked a step ({went_on} then went on to their end); the reconciler repaired {len(repairs)} "
        f"orders after their end; {second_starts} second starts; {days} days passed at Stripe; {reruns} steps ran "
        "again the next day"
    )


def _authorise_and_capture(verdicts: list[Verdict]) -> str:
    """How many executions held the stock for an authorisation, captured one, released one."""

    def reached(step: str) -> int:
        return sum(1 for verdict in verdicts if any(s == step or s.startswith(f"{step} x") for s in verdict.path))

    return (
        f"authorise, reserve, capture: {reached('ReserveStock')} reached ReserveStock, {reached('CapturePayment')} "
        f"CapturePayment, {reached('ReleaseAuthorization')} ReleaseAuthorization"
    )


def by_destination(verdicts: list[Verdict]) -> list[str]:
    """A line for each event destination: its schedules, how many held, how Stripe's deliveries went, the ends."""
    lines = []
    for destination in sorted({v.destination for v in verdicts}, key=_destination_order):
        mine = [v for v in verdicts if v.destination == destination]
        counts: Counter[str] = sum((v.deliveries for v in mine), Counter())
        if destination.startswith("eventbridge"):
            deliveries = (
                f"{counts['put']} events put on the bus, read {counts['read']} times ({counts['failed']} failed and "
                f"came again, {counts['handled again']} handled twice)"
            )
        else:
            deliveries = f"{counts['requests']} webhook requests ({counts['answered 503']} answered 503, sent again)"
        states = Counter(v.final_state for v in mine)
        lines.append(
            f"    {destination}: {len(mine)} schedules, {sum(1 for v in mine if v.ok)} held every invariant; "
            f"{deliveries}; ended " + ", ".join(f"{k} {n}" for k, n in states.most_common())
        )
    return lines


def _destination_order(destination: str) -> tuple[bool, bool]:
    return destination.startswith("eventbridge"), destination.endswith("thin")


def _percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else 0.0


def report(results: Results) -> str:
    lines = [f"CaptureMethod {results.capture_method}:"]
    if results.schedules:
        ok = sum(1 for v in results.schedules if v.ok)
        states = Counter(v.final_state for v in results.schedules)
        fired = sum(v.faults_fired for v in results.schedules)
        lines.append(
            f"schedules: {len(results.schedules)} in {results.schedule_seconds:.1f}s, {ok} held every invariant; "
            f"{fired} injected faults fired"
        )
        lines.append("  final states: " + ", ".join(f"{k} {n}" for k, n in states.most_common()))
        lines.append("  " + _what_was_tried(results.schedules))
        lines.append("  " + _authorise_and_capture(results.schedules))
        lines.append("  by event destination:")
        lines += by_destination(results.schedules)
        lines.append(
            f"  scheduled sweeps: {results.sweeps} ({results.sweep_seconds:.0f}s), {len(results.sweep_failures)} failed"
            + "".join(f"; {failure[:160]}" for failure in results.sweep_failures[:3])
        )
    if results.load:
        load = results.load
        ok = load.count - len(load.failed)
        lines.append(
            f"load: {load.count} payments started concurrently (all started within {load.start_seconds:.1f}s), "
            f"every execution final after {load.wall_seconds:.1f}s wall ({load.count / load.wall_seconds:.1f}/s, "
            f"{load.cpu_seconds:.0f}s CPU); {ok} held every invariant"
        )
        p50, p95 = _percentile(load.latencies, 0.5), _percentile(load.latencies, 0.95)
        lines.append(
            f"  execution time p50 {p50:.1f}s, p95 {p95:.1f}s, max {max(load.latencies, default=0):.1f}s; ended: "
            + ", ".join(f"{k} {n}" for k, n in load.final_states.most_common())
        )
    if results.webhook_cases:
        ok = sum(1 for c in results.webhook_cases if c.ok)
        lines.append(
            f"bad webhook requests: {len(results.webhook_cases)}, {ok} answered as expected and changed nothing"
        )
    if results.bad_starts:
        ok = sum(1 for s in results.bad_starts if s.ok)
        lines.append(f"bad start inputs: {len(results.bad_starts)}, {ok} ended in OrderRejected naming the field")
    for verdict in results.verdicts():
        if not verdict.ok:
            lines.append(
                f"PROBLEM {verdict.order_id} [{verdict.name}]: ended {verdict.final_state} "
                f"({verdict.execution_status}), order {verdict.order_status}, Stripe {verdict.stripe_truth}"
            )
            lines += [f"    {problem}" for problem in verdict.problems()]
            lines.append("    path: " + " > ".join(verdict.path))
    for problem in results.schedule_stock + (results.load.stock_problems if results.load else []):
        lines.append(f"PROBLEM stock: {problem}")
    for letter in results.dead_letters:
        lines.append(f"PROBLEM dead letter: {letter}")
    for case in results.webhook_cases:
        if not case.ok:
            lines.append(
                f"PROBLEM webhook [{case.name}]: expected {case.expected}, got {case.status}"
                + "".join(f"; {c}" for c in case.changed)
            )
    for start in results.bad_starts:
        if not start.ok:
            lines.append(f"PROBLEM start [{start.name}]: " + "; ".join(start.problems))
    return "\n".join(lines)
