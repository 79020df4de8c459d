"""What a payment costs at AWS list prices (us-east-1, on-demand, free tiers left out), from measured counts.

Every price carries the page it was read from. Lambda duration is not measured here (the local
runtime has no network, so its durations say nothing about AWS); each function gets an assumed
warm duration, listed with the reason, and the table shows how little Lambda weighs anyway.
"""

import re
from dataclasses import dataclass

from bench.payments import PathCounts
from local_runtime.template import Template


@dataclass(frozen=True)
class Price:
    usd: float  # per unit
    unit: str
    quoted: str  # as the page states it
    source: str


KMS_NOTE = "GetSecretValue on a secret under a customer managed key decrypts with it"
PRICES = {
    "transition": Price(
        0.025 / 1000, "state transition", "$0.025 per 1,000 state transitions (Standard workflows)",
        "https://aws.amazon.com/step-functions/pricing/",
    ),
    "lambda_request": Price(
        0.20 / 1e6, "Lambda request", "$0.20 per 1M requests", "https://aws.amazon.com/lambda/pricing/"
    ),
    "lambda_gb_second": Price(
        0.0000133334, "Lambda GB-second", "$0.0000133334 per GB-second, Arm (first 7.5 billion GB-s a month)",
        "https://aws.amazon.com/lambda/pricing/",
    ),
    "write_unit": Price(
        0.625 / 1e6, "DynamoDB write request unit", "$0.625 per million (on-demand, Standard table class)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "read_unit": Price(
        0.125 / 1e6, "DynamoDB read request unit", "$0.125 per million (on-demand, Standard table class)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "email": Price(0.10 / 1000, "SES e-mail", "$0.10 per 1,000 e-mails sent", "https://aws.amazon.com/ses/pricing/"),
    "http_request": Price(
        1.00 / 1e6, "HTTP API request", "$1.00 per million requests (first 300 million a month)",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "secret_call": Price(
        0.05 / 10000, "Secrets Manager API call", "$0.05 per 10,000 API calls",
        "https://aws.amazon.com/secrets-manager/pricing/",
    ),
    "kms_request": Price(
        0.03 / 10000, "KMS request", f"$0.03 per 10,000 requests ({KMS_NOTE})", "https://aws.amazon.com/kms/pricing/"
    ),
    # Not in the total: they depend on sampling and retention choices, not on the design measured here.
    "trace": Price(
        5.00 / 1e6, "X-Ray trace recorded", "$5.00 per million traces recorded", "https://aws.amazon.com/xray/pricing/"
    ),
    "log_gb": Price(
        0.50, "CloudWatch Logs GB ingested", "$0.50 per GB ingested (Standard log class)",
        "https://aws.amazon.com/cloudwatch/pricing/",
    ),
}  # fmt: skip

# Assumed warm duration of each function in AWS, in ms: a DynamoDB request ~10 ms, SES ~50 ms, a Stripe
# API request ~300 ms (create-and-confirm ~600 ms), plus ~10 ms of handler time.
ASSUMED_MS = {
    "AcceptOrderFunction": 30,  # one conditional PutItem
    "CreatePaymentIntentFunction": 700,  # two DynamoDB writes around a create-and-confirm
    "RegisterTaskTokenFunction": 30,  # one UpdateItem (SendTaskSuccess only when the outcome came first)
    "StripeWebhookFunction": 50,  # signature check, one conditional UpdateItem, SendTaskSuccess
    "SettlePaymentIntentFunction": 700,  # retrieve, cancel, retrieve, one UpdateItem
    "ReserveStockFunction": 350,  # a Stripe retrieve (the authorisation) and one transaction
    "SettleAuthorizationFunction": 700,  # retrieve, capture (a release: retrieve, cancel, retrieve, one transaction)
    "FulfilOrderFunction": 350,  # a Stripe retrieve (where the function confirms with Stripe) and one transaction
    "RefundPaymentFunction": 700,  # refund with idempotency key, one UpdateItem
    "NotifyCustomerFunction": 80,  # one SES SendEmail
}
LOG_BYTES_PER_INVOCATION = 350  # Lambda's START / END / REPORT lines
STATE_MACHINE_LOG_BYTES_PER_EVENT = 400  # Logging Level ALL without execution data: one record per history event


def memory_mb() -> dict[str, int]:
    template = Template("stripe-payments")
    default = int(template.document.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    return {
        logical_id: int(resource["Properties"].get("MemorySize", default))
        for logical_id, resource in template.of_type("AWS::Serverless::Function").items()
    }


def secret_readers() -> set[str]:
    """The functions whose code reads the Stripe secret (directly or through the Stripe gateway)."""
    template = Template("stripe-payments")
    readers = set()
    for logical_id, spec in template.functions().items():
        source = (spec.code_dir / "app.py").read_text()
        if re.search(r"\b(stripe_gateway|stripe_credentials)\(\)", source):
            readers.add(logical_id)
    return readers


@dataclass
class Cost:
    lines: dict[str, float]  # item -> USD per payment

    @property
    def total(self) -> float:
        return sum(self.lines.values())

    def per_million(self, item: str | None = None) -> float:
        return (self.total if item is None else self.lines[item]) * 1e6


def lambda_cost(invocations: dict[str, int], memory: dict[str, int], duration_factor: float = 1.0) -> float:
    request, compute = PRICES["lambda_request"].usd, PRICES["lambda_gb_second"].usd
    return sum(
        n * (request + memory.get(name, 256) / 1024 * ASSUMED_MS.get(name, 100) * duration_factor / 1000 * compute)
        for name, n in invocations.items()
    )


def billed_invocations(counts: PathCounts) -> dict[str, int]:
    """As in production: one webhook invocation per delivery of a subscribed event type."""
    invocations = {name: n for name, n in counts.invocations.items() if name != "StripeWebhookFunction"}
    if counts.webhook_requests:
        invocations["StripeWebhookFunction"] = counts.webhook_requests
    return invocations


def our_cost(counts: PathCounts, memory: dict[str, int]) -> Cost:
    secret_reads = counts.calls("secretsmanager", "GetSecretValue")
    return Cost({
        "Step Functions": counts.transitions * PRICES["transition"].usd,
        "Lambda": lambda_cost(billed_invocations(counts), memory),
        "DynamoDB": counts.write_units * PRICES["write_unit"].usd + counts.read_units * PRICES["read_unit"].usd,
        "SES": counts.calls("sesv2", "SendEmail") * PRICES["email"].usd,
        "API Gateway": counts.webhook_requests * PRICES["http_request"].usd,
        "Secrets Manager + KMS": secret_reads * (PRICES["secret_call"].usd + PRICES["kms_request"].usd),
    })  # fmt: skip


@dataclass
class Obvious:
    """The obvious design, derived from the same execution: what it would add, and its cost."""

    extra_invocations: int
    extra_reads: int
    secret_reads: int
    cost: Cost


def obvious_cost(counts: PathCounts, memory: dict[str, int], readers: set[str]) -> Obvious:
    """Every step a Lambda, the secret read on every invocation that needs it, the webhook reading then writing.

    Same states, so the same transitions. Each direct DynamoDB task (MarkOrder*) becomes a Lambda
    invocation; each function that talks to Stripe reads the secret (and KMS decrypts it) on every
    invocation; the webhook reads the payment item before writing it (0.5 read unit, eventually
    consistent) on each subscribed delivery.
    """
    invocations = billed_invocations(counts)
    invocations["MarkOrderFunction"] = counts.direct_dynamodb_tasks
    secret_reads = sum(n for name, n in invocations.items() if name in readers)
    reads = counts.webhook_requests
    ours = our_cost(counts, memory).lines
    lines = dict(ours)
    lines["Lambda"] = lambda_cost(invocations, {**memory, "MarkOrderFunction": 256})
    lines["DynamoDB"] = ours["DynamoDB"] + reads * 0.5 * PRICES["read_unit"].usd
    lines["Secrets Manager + KMS"] = secret_reads * (PRICES["secret_call"].usd + PRICES["kms_request"].usd)
    return Obvious(counts.direct_dynamodb_tasks, reads, secret_reads, Cost(lines))


def noted(counts: PathCounts) -> dict[str, float]:
    """Per payment, USD, left out of the total: X-Ray at 100% sampling and CloudWatch Logs ingestion."""
    traces = 1 + counts.webhook_requests  # the execution's trace, and one per webhook request
    log_bytes = (
        counts.log_bytes * counts.lambda_invocations / max(1, sum(counts.invocations.values()))
        + counts.lambda_invocations * LOG_BYTES_PER_INVOCATION
        + (counts.transitions * 3) * STATE_MACHINE_LOG_BYTES_PER_EVENT  # ~3 history events per state
    )
    return {
        "X-Ray (every trace recorded)": traces * PRICES["trace"].usd,
        "CloudWatch Logs": log_bytes / 1e9 * PRICES["log_gb"].usd,
    }
