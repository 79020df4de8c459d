"""One webhook Lambda in a fresh process: import its handler, answer signed Stripe events, report.

Run by bench/webhook.py as `python -I -S webhook_child.py <config.json> <result.json>`, with only
a Lambda-like path (bench/lambda_site.py) importable. Standard library only until the handler
module is imported, so that everything the handler costs is counted where it happens.

AWS is served in this process: a botocore `before-send` hook (the hook moto itself uses) answers
Secrets Manager, DynamoDB and Step Functions in their wire format, so no request leaves the
process and ours and the naive handler see exactly the same AWS.
"""

import hashlib
import hmac
import importlib.util
import json
import os
import sys
import time
import uuid

TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAA-bench-task-token"
# Reported when loaded by the first response: what each handler pulls in.
HEAVY_MODULES = (
    "stripe", "boto3", "requests", "s3transfer", "aws_xray_sdk", "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.idempotency", "aws_lambda_powertools.utilities.data_classes",
)  # fmt: skip


class FakeAws:
    """Answers the AWS calls a webhook makes, the way the real services would, and counts them."""

    def __init__(self, secret_string: str) -> None:
        self.secret_string = secret_string
        self.calls: list[str] = []

    def __call__(self, request, **kwargs):  # botocore's before-send handler signature
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = target.decode() if isinstance(target, bytes) else str(target)
        self.calls.append(operation)
        body = json.loads(request.body or b"{}")
        answer = self.answer(operation.rpartition(".")[2], body)
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": str(uuid.uuid4())}
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(answer).encode()))

    def answer(self, action: str, body: dict) -> dict:
        if action == "GetSecretValue":
            return {
                "ARN": body.get("SecretId", ""), "Name": "stripe", "VersionId": "v1",
                "SecretString": self.secret_string, "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9,
            }  # fmt: skip
        key = body.get("Key", {})
        if action == "GetItem":  # the waiting execution's token, as RegisterTaskToken stored it
            return {"Item": {**key, "taskToken": {"S": TASK_TOKEN}, "status": {"S": "requires_payment_method"}}}
        if action == "UpdateItem" and body.get("ReturnValues") == "ALL_NEW":
            values = body.get("ExpressionAttributeValues", {})
            item = {**key, "taskToken": {"S": TASK_TOKEN}}
            returned = {"status": ":status", "outcome": ":outcome", "outcomeEventId": ":event"}
            item.update({name: values[value] for name, value in returned.items() if value in values})
            return {"Attributes": item}
        return {}  # UpdateItem/PutItem without return values, SendTaskSuccess


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **kwargs):
        yield self._data


class _InstallWhenImported:  # a sys.meta_path finder (importlib.abc would cost ~30 ms to import)
    """Add the fake to botocore's built-in handlers the moment the handler's imports load botocore."""

    def __init__(self, fake: FakeAws) -> None:
        self.fake = fake

    def find_spec(self, name, path, target=None):
        if name != "botocore.handlers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.BUILTIN_HANDLERS.append(("before-send", self.fake))

        spec.loader.exec_module = exec_module
        return spec


class Context:
    function_name = "stripe-payments-StripeWebhookFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stripe-payments-StripeWebhookFunction"
    memory_limit_in_mb = 512
    log_group_name = log_stream_name = ""

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def signed_event(config: dict, number: int) -> dict:
    """An HTTP API (payload 2.0) request carrying a freshly signed payment_intent.succeeded event."""
    now = int(time.time())
    payment_intent_id = f"pi_bench{number:08d}"
    stripe_event = {
        "id": f"evt_bench{number:08d}", "object": "event", "api_version": "2026-10-28.endive",
        "created": now, "livemode": False, "pending_webhooks": 1, "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": payment_intent_id, "object": "payment_intent", "amount": 3000, "currency": "usd",
            "status": "succeeded", "last_payment_error": None, "livemode": False,
            "metadata": {"app_id": config["app_id"], "order_id": f"order-{number}", "attempt": "1"},
        }},
    }  # fmt: skip
    body = json.dumps(stripe_event, indent=2)
    digest = hmac.new(config["signing_secret"].encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "version": "2.0", "routeKey": "POST /webhooks/stripe", "rawPath": "/webhooks/stripe", "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8", "stripe-signature": f"t={now},v1={digest}",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "http": {"method": "POST", "path": "/webhooks/stripe", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "Stripe/1.0"},
            "requestId": str(uuid.uuid4()), "routeKey": "POST /webhooks/stripe", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": now * 1000,
        },
        "body": body, "isBase64Encoded": False,
    }  # fmt: skip


def main() -> None:
    started = time.perf_counter()
    with open(sys.argv[1]) as file:
        config = json.load(file)
    os.environ.update(config["environment"])
    sys.path[:0] = config["path"]
    fake = FakeAws(json.dumps({"api_key": "sk_test_bench", "webhook_signing_secret": config["signing_secret"]}))
    sys.meta_path.insert(0, _InstallWhenImported(fake))
    event = signed_event(config, 0)

    before_import = time.perf_counter()
    import app  # the function's module, as Lambda imports it from /var/task

    imported = time.perf_counter()
    response = app.lambda_handler(event, Context())
    answered_ns, answered = time.time_ns(), time.perf_counter()
    result = {
        "answered_ns": answered_ns,
        "cpu_ms": time.process_time() * 1000,
        "status": response["statusCode"],
        "body": response["body"],
        "setup_ms": (before_import - started) * 1000,
        "import_ms": (imported - before_import) * 1000,
        "first_call_ms": (answered - imported) * 1000,
        "cold_aws_calls": list(fake.calls),
        "modules": len(sys.modules),
        "heavy_modules": sorted(name for name in HEAVY_MODULES if name in sys.modules),
    }

    warm = int(config.get("warm_calls", 0))
    if warm:
        events = [signed_event(config, n) for n in range(1, warm + 1)]
        latencies, statuses, per_call = [], set(), []
        for event in events:
            fake.calls.clear()
            begin = time.perf_counter()
            response = app.lambda_handler(event, Context())
            latencies.append((time.perf_counter() - begin) * 1000)
            statuses.add(response["statusCode"])
            per_call.append(list(fake.calls))
        result.update(warm_ms=latencies, warm_statuses=sorted(statuses), warm_aws_calls=per_call[-1])
    with open(sys.argv[2], "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
