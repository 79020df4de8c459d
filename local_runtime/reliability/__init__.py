"""`make reliability`: the payment invariants under races, faults, load and bad input (docs/reliability.md).

One module a concern; `python -m local_runtime.reliability` runs `cli.main`:

- settings: the Stripe keys and webhook secrets, the stock, the stack parameters every part shares, per
  CaptureMethod (every part runs under each, on a stack of its own)
- stack: the local deployment (FakeStripe and a LocalCloud) a run drives, and the watcher of its executions
- courier: Stripe's deliveries, per an order's delivery plan (held, racing the token, delayed, lost...), to its
  event destination (the webhook or the partner event bus, snapshot or thin events)
- destinations: FakeStripe's own deliveries (plan "stripe"), each order's to its own destination
- faults: the Stripe and AWS failures and outages a schedule aims at its own order's requests
- schedules: the seeded schedules (payment, delivery, faults, second starts, key pruning), the tables they are
  drawn from, and the schedules written out for every seed
- schedule_run: one schedule run on a shared stack, its customer, the races it stages, what follows its end
- reconciler: the reconciler as AWS starts it (on an execution's end, and the scheduled sweep)
- redrive: the steps of an ended execution run again, as a redrive would run them
- invariants: the verdict on each order against Stripe's final word and its CaptureMethod, its money (and its
  authorisation and reservation) after the reconciler, the stock
- bad_webhooks, webhook_targets: the bad webhook requests, and the orders they are sent at
- bad_starts: the bad start inputs
- load: many payments at once
- processes: a part of the run in a process of its own (the load; the schedules that move Stripe's clock)
- report: the report and its summary line
- cli: the command

Adding a schedule. A seed draws from the tables in `schedules` and `faults` in their order:
- a payment method or customer behaviour: a `Payment` in `schedules.PAYMENTS` and its weight in
  `schedules.PAYMENT_WEIGHTS`; a new `Payment.customer` action is played in `schedule_run.ScheduleRun`
  (`_customer`, `_before_invoke`, `_before_cancel`);
- a way of delivering webhooks: a mode in `courier.Plan`'s list, handled in `Courier.capture` (and in
  `Courier.token_about_to_be_stored` if it waits on the task token), weighted in `schedules.DELIVERY_WEIGHTS`;
- a fault: a maker in `faults.STRIPE_FAULTS` or `faults.AWS_FAULTS`; an outage (a fault that `lasts`) in
  `faults.OUTAGES`;
- a second start of the order, or a day passing at Stripe: a mode in `schedules.SECOND_START_WEIGHTS` or
  `schedules.KEY_PRUNING_WEIGHTS`, played in `ScheduleRun` (a mode that moves Stripe's clock must make
  `Schedule.moves_stripes_clock` true: such schedules run one at a time);
- a rule every order must keep: in `invariants.judge` (`invariants.judge_capture_method` for what one
  CaptureMethod does), or `invariants.judge_money` for what must hold once the reconciler has run (the
  authorise-and-capture invariants are the demo's, `scenarios.authorisation_problems`).
Any of these changes what every seed draws, so the figures in docs/reliability.md are to be measured again.
A scenario every seed must run is a `schedules.written(...)` in `schedules.written_out`; one that must always run
in `make test` (a regression) is a `Schedule` written out by hand in `REGRESSIONS` of
tests/reliability/test_schedules.py. Neither changes what a seed draws.
"""

from local_runtime.reliability.bad_starts import BAD_STARTS, BadStart, StartResult, run_bad_starts
from local_runtime.reliability.bad_webhooks import WEBHOOK_CASES, WebhookCase, _foreign, _signature
from local_runtime.reliability.cli import main
from local_runtime.reliability.faults import AwsFault, StripeFault
from local_runtime.reliability.invariants import Verdict
from local_runtime.reliability.schedule_run import run_schedules
from local_runtime.reliability.schedules import Schedule, generate_schedules
from local_runtime.reliability.settings import DEFAULT_SEED, PATIENT_PARAMETERS, SCHEDULE_PARAMETERS
from local_runtime.reliability.stack import Stack, local_stack
from local_runtime.reliability.webhook_targets import (
    WebhookTargets,
    finish_targets,
    prepare_targets,
    run_webhook_case,
    snapshot,
)

__all__ = [
    "BAD_STARTS",
    "DEFAULT_SEED",
    "PATIENT_PARAMETERS",
    "SCHEDULE_PARAMETERS",
    "WEBHOOK_CASES",
    "AwsFault",
    "BadStart",
    "Schedule",
    "Stack",
    "StartResult",
    "StripeFault",
    "Verdict",
    "WebhookCase",
    "WebhookTargets",
    "_foreign",  # tests/reliability/test_bad_webhooks.py builds a request of its own with these two
    "_signature",
    "finish_targets",
    "generate_schedules",
    "local_stack",
    "main",
    "prepare_targets",
    "run_bad_starts",
    "run_schedules",
    "run_webhook_case",
    "snapshot",
]
