"""template.yaml as CloudFormation receives it (transformed by aws-sam-translator, as `sam deploy`
does) holds the security and operations properties: least-privilege IAM, logs with retention and
without execution data, tracing, alarms to an encrypted topic, recoverable and retained tables, a
throttled webhook with reserved concurrency, and no secret value anywhere in the template.
"""

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.session
import pytest
from botocore import xform_name
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CODE = [*sorted((ROOT / "layers" / "payments" / "payments").glob("*.py")), *sorted(ROOT.glob("functions/*/app.py"))]
SECRET_VALUE = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{10,}")

STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-payment-workflow"
)
EXECUTIONS_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-payment-workflow:*"
)
SES_IDENTITIES = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
# Whatever calls Stripe reads the secret and takes a token from the shared request budget (payments.pacing).
READS_STRIPE_SECRET = {
    ("secretsmanager:GetSecretValue", "StripeSecret"), ("kms:Decrypt", "PaymentsKey"),
    ("dynamodb:UpdateItem", "StripeRateLimitTable"),
}  # fmt: skip
# What Lambda's SQS event source mapping calls with the function's role (no code of ours calls SQS).
EVENT_SOURCE_MAPPING_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
}  # fmt: skip
# Deployed only with StripeEventSourceName: no alarm or dashboard of the stack may name it unconditionally.
CONDITIONAL_FUNCTIONS = {"StripeEventsFunction"}

# What each handler does, read from functions/<name>/app.py and the layer code it calls.
EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    # steps.accept_order -> OrderRecords.claim (put_item)
    "AcceptOrderFunction": {("dynamodb:PutItem", "OrdersTable")},
    # steps.request_payment -> orders.begin_attempt, note_request and record_payment_intent, Stripe (secret),
    # payments.record_payment_intent
    "CreatePaymentIntentFunction": {
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:UpdateItem", "PaymentsTable"),
        *READS_STRIPE_SECRET,
    },
    # steps.register_task_token -> payments.store_task_token, TaskTokens.resume
    "RegisterTaskTokenFunction": {
        ("dynamodb:UpdateItem", "PaymentsTable"),
        ("states:SendTaskSuccess", STATE_MACHINE_ARN),
    },
    # signing secrets, payments.record_event, TaskTokens.resume, Recovery (the reconciler, asynchronously)
    "StripeWebhookFunction": {
        ("dynamodb:UpdateItem", "PaymentsTable"),
        ("states:SendTaskSuccess", STATE_MACHINE_ARN),
        ("lambda:InvokeFunction", "ReconcilePaymentsFunction"),
        *READS_STRIPE_SECRET,
    },
    # steps.settle_payment_intent -> Stripe (secret), payments.record_status
    "SettlePaymentIntentFunction": {("dynamodb:UpdateItem", "PaymentsTable"), *READS_STRIPE_SECRET},
    # steps.retry_off_session -> Stripe (secret), payments.record_status
    "ConfirmPaymentIntentFunction": {("dynamodb:UpdateItem", "PaymentsTable"), *READS_STRIPE_SECRET},
    # steps.fulfil_order -> Stripe (secret) to confirm the payment; OrderRecords.fulfil: one transaction of
    # Updates on orders and inventory; get on a cancelled one
    "FulfilOrderFunction": {
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:UpdateItem", "InventoryTable"),
        ("dynamodb:GetItem", "OrdersTable"),
        *READS_STRIPE_SECRET,
    },
    # steps.reserve_stock and steps.capture_payment / release_authorization -> Stripe (secret);
    # OrderRecords.reserve / release: one transaction on orders and inventory, get on a cancelled one
    **{
        function: {
            ("dynamodb:UpdateItem", "OrdersTable"),
            ("dynamodb:UpdateItem", "InventoryTable"),
            ("dynamodb:GetItem", "OrdersTable"),
            *READS_STRIPE_SECRET,
        }
        for function in ("ReserveStockFunction", "SettleAuthorizationFunction")
    },
    # steps.refund_payment -> Stripe (secret), orders.append_status
    "RefundPaymentFunction": {("dynamodb:UpdateItem", "OrdersTable"), *READS_STRIPE_SECRET},
    # Mailer.send -> sesv2 send_email
    "NotifyCustomerFunction": {("ses:SendEmail", SES_IDENTITIES)},
    # the same as the webhook, from the EventBridge queue (SQS reads: the event source mapping's)
    "StripeEventsFunction": {
        *{(action, "StripeEventsQueue") for action in EVENT_SOURCE_MAPPING_ACTIONS},
        ("dynamodb:UpdateItem", "PaymentsTable"),
        ("states:SendTaskSuccess", STATE_MACHINE_ARN),
        ("lambda:InvokeFunction", "ReconcilePaymentsFunction"),
        *READS_STRIPE_SECRET,
    },
    # merchant_api.start_payment -> Executions.start; when refused, AdmissionQueue.put and orders.note_queued
    "StartPaymentFunction": {
        ("states:StartExecution", "PaymentWorkflow"),
        ("sqs:SendMessage", "AdmissionQueue"),
        ("dynamodb:PutItem", "OrdersTable"),
    },
    # admission.start_queued -> Executions.start (SQS reads: the event source mapping's)
    "StartQueuedPaymentsFunction": {
        *{(action, "AdmissionQueue") for action in EVENT_SOURCE_MAPPING_ACTIONS},
        ("states:StartExecution", "PaymentWorkflow"),
    },
    # merchant_api.payment_status -> orders.get, payments.get, Stripe (secret) for the client_secret
    "GetPaymentFunction": {
        ("dynamodb:GetItem", "OrdersTable"),
        ("dynamodb:GetItem", "PaymentsTable"),
        *READS_STRIPE_SECRET,
    },
    # Reconciler: Stripe (secret); orders get, record_payment_intent, note, fulfil (orders and inventory) and
    # refund; Executions.status; the customer's e-mail
    "ReconcilePaymentsFunction": {
        ("dynamodb:GetItem", "OrdersTable"),
        ("dynamodb:UpdateItem", "OrdersTable"),
        ("dynamodb:UpdateItem", "InventoryTable"),
        ("states:DescribeExecution", EXECUTIONS_ARN),
        ("ses:SendEmail", SES_IDENTITIES),
        *READS_STRIPE_SECRET,
    },
}
# Actions AWS authorises on no narrower resource than "*".
WILDCARD_ONLY_ACTIONS = frozenset({
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "cloudwatch:PutMetricData",
})  # fmt: skip
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class StubPolicyLoader:
    """ManagedPolicyLoader without IAM: the names SAM may attach, with their well-known ARNs."""

    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def sam_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return sam_template()


@pytest.fixture(scope="module")
def cfn() -> Iterator[dict[str, Any]]:
    """The template after the SAM transform, as CloudFormation deploys it."""
    template = sam_template()
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        # `sam package` uploads local code and inlines nothing; the translator wants S3 locations.
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://artifacts/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://artifacts/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::StateMachine":
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}):
        yield transform(template, {}, StubPolicyLoader())  # type: ignore[arg-type]


def resources_of(cfn: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def name_of(resource: Any) -> str:
    """A policy Resource as a readable name: the logical id it points at, or the ARN pattern."""
    if isinstance(resource, str):
        return resource
    ((key, arg),) = resource.items()
    if key == "Ref":
        return str(arg)
    if key == "Fn::GetAtt":
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        assert attribute == "Arn"
        return str(logical_id)
    if key == "Fn::If":  # the secret this stack creates, or the ARN given instead
        condition, created, given = arg
        assert (condition, given) == ("CreateStripeSecret", {"Ref": "ExistingStripeSecretArn"})
        return name_of(created)
    if key == "Fn::Sub" and isinstance(arg, str):
        return arg
    raise AssertionError(f"unexpected policy resource {resource}")


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"].get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (action, name_of(resource))
        for statement in statements(role)
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def function_role(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    role = cfn["Resources"][function]["Properties"]["Role"]
    return cfn["Resources"][role["Fn::GetAtt"][0]]


def alarm_metrics(alarm: dict[str, Any]) -> set[tuple[str, str]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return {(props["Namespace"], props["MetricName"])}
    return {
        (query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"])
        for query in props["Metrics"]
        if "MetricStat" in query
    }


# -- IAM --------------------------------------------------------------------------------------------


def test_no_statement_allows_every_action_or_uses_not_action(cfn: dict[str, Any]) -> None:
    for logical_id, role in resources_of(cfn, "AWS::IAM::Role").items():
        for statement in statements(role):
            assert statement["Effect"] == "Allow", logical_id
            assert "NotAction" not in statement and "NotResource" not in statement, logical_id
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (logical_id, action)


def test_a_wildcard_resource_only_for_actions_that_have_no_narrower_one(cfn: dict[str, Any]) -> None:
    for logical_id, role in resources_of(cfn, "AWS::IAM::Role").items():
        for statement in statements(role):
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= WILDCARD_ONLY_ACTIONS, (logical_id, statement)


@pytest.mark.parametrize("function", sorted(EXPECTED_GRANTS))
def test_each_function_gets_exactly_what_its_code_uses(cfn: dict[str, Any], function: str) -> None:
    assert grants(function_role(cfn, function)) == EXPECTED_GRANTS[function]


def test_the_template_grants_every_aws_call_the_code_makes_and_no_other() -> None:
    # Given every AWS API the functions and the shared layer call (boto3 snake_case method names)
    services = {
        "dynamodb": "dynamodb", "stepfunctions": "states", "sesv2": "ses", "secretsmanager": "secretsmanager",
        "lambda": "lambda", "sqs": "sqs",
    }  # fmt: skip
    session = botocore.session.get_session()
    operations = {
        xform_name(op): f"{prefix}:{op}"
        for service, prefix in services.items()
        for op in session.get_service_model(service).operation_names
    }
    source = "\n".join(path.read_text() for path in CODE)
    called = {operations[name] for name in re.findall(r"\.(\w+)\(", source) if name in operations}
    # Powertools' get_secret calls GetSecretValue; a transaction of Update items is authorised as UpdateItem.
    if "parameters.get_secret(" in source:
        called.add("secretsmanager:GetSecretValue")
    if "dynamodb:TransactWriteItems" in called:
        called.remove("dynamodb:TransactWriteItems")
        called.add("dynamodb:UpdateItem")
    if "lambda:Invoke" in called:  # the API is Invoke, the IAM action InvokeFunction
        called.remove("lambda:Invoke")
        called.add("lambda:InvokeFunction")

    # Then the functions' policies grant those actions (and kms:Decrypt for the encrypted secret), nothing else
    granted = {action for expected in EXPECTED_GRANTS.values() for action, _ in expected}
    assert granted - {"kms:Decrypt"} - EVENT_SOURCE_MAPPING_ACTIONS == called


def test_only_the_functions_that_call_stripe_read_the_secret(cfn: dict[str, Any]) -> None:
    readers = {
        function
        for function in EXPECTED_GRANTS
        if ("secretsmanager:GetSecretValue", "StripeSecret") in grants(function_role(cfn, function))
    }
    assert readers == {
        "CreatePaymentIntentFunction", "StripeWebhookFunction", "SettlePaymentIntentFunction", "RefundPaymentFunction",
        "FulfilOrderFunction", "ReconcilePaymentsFunction", "ConfirmPaymentIntentFunction", "GetPaymentFunction",
        "StripeEventsFunction", "ReserveStockFunction", "SettleAuthorizationFunction",
    }  # fmt: skip
    for function in readers:
        (decrypt,) = [s for s in statements(function_role(cfn, function)) if s["Action"] == "kms:Decrypt"]
        conditions = decrypt["Condition"]["StringEquals"]
        assert conditions["kms:ViaService"] == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
        assert name_of(conditions["kms:EncryptionContext:SecretARN"]) == "StripeSecret"


def test_the_notifier_may_send_only_as_the_receipt_sender(cfn: dict[str, Any]) -> None:
    (send,) = statements(function_role(cfn, "NotifyCustomerFunction"))
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "ReceiptSender"}}}


def test_function_roles_attach_only_basic_execution_and_xray(cfn: dict[str, Any]) -> None:
    for function in EXPECTED_GRANTS:
        assert function_role(cfn, function)["Properties"]["ManagedPolicyArns"] == [
            MANAGED_POLICIES["AWSLambdaBasicExecutionRole"], MANAGED_POLICIES["AWSXrayWriteOnlyAccess"],
        ]  # fmt: skip


def test_send_task_success_targets_this_stacks_state_machine(cfn: dict[str, Any]) -> None:
    name = cfn["Resources"]["PaymentWorkflow"]["Properties"]["StateMachineName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-payment-workflow"}
    assert STATE_MACHINE_ARN.endswith(":stateMachine:" + name["Fn::Sub"])


def test_state_machine_invokes_only_the_functions_its_definition_names(cfn: dict[str, Any]) -> None:
    machine = cfn["Resources"]["PaymentWorkflow"]
    role = cfn["Resources"][machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    definition = (ROOT / "statemachine" / "payment_workflow.asl.json").read_text()
    invoked = {name_of(substitutions[placeholder]) for placeholder in re.findall(r"\$\{(\w+FunctionArn)\}", definition)}
    updated = {name_of(substitutions[p]) for p in re.findall(r'"TableName": "\$\{(\w+)\}"', definition)}

    expected = {("lambda:InvokeFunction", function) for function in invoked}
    expected |= {("dynamodb:UpdateItem", table) for table in updated}
    expected |= {(action, "*") for action in WILDCARD_ONLY_ACTIONS if action.startswith("logs:")}
    api = {"StripeWebhookFunction", "StripeEventsFunction", "StartPaymentFunction", "GetPaymentFunction",
           "StartQueuedPaymentsFunction"}  # fmt: skip
    assert invoked == set(EXPECTED_GRANTS) - api - {"ReconcilePaymentsFunction"}
    assert grants(role) == expected
    assert role["Properties"]["ManagedPolicyArns"] == [MANAGED_POLICIES["AWSXrayWriteOnlyAccess"]]


# -- Logging and tracing ----------------------------------------------------------------------------


def test_every_log_group_has_a_retention_and_the_stack_key(cfn: dict[str, Any]) -> None:
    log_groups = resources_of(cfn, "AWS::Logs::LogGroup")
    assert len(log_groups) == len(EXPECTED_GRANTS) + 2  # functions, state machine, webhook access log
    for logical_id, log_group in log_groups.items():
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id
        assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["PaymentsKey", "Arn"]}, logical_id


def test_every_function_traces_and_logs_to_its_own_log_group(cfn: dict[str, Any]) -> None:
    functions = resources_of(cfn, "AWS::Lambda::Function")
    assert set(functions) == set(EXPECTED_GRANTS)
    log_groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()]
    assert len(set(log_groups)) == len(functions)
    for function, props in ((k, v["Properties"]) for k, v in functions.items()):
        assert props["TracingConfig"] == {"Mode": "Active"}, function
        assert cfn["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]["Type"] == "AWS::Logs::LogGroup"
        # Text format: Lambda leaves the root logger alone (an application level of DEBUG would let
        # botocore and stripe-python log response bodies, the secret's among them).
        assert set(props["LoggingConfig"]) == {"LogGroup"}, function


def test_state_machine_logs_without_execution_data_and_traces(cfn: dict[str, Any]) -> None:
    props = cfn["Resources"]["PaymentWorkflow"]["Properties"]
    logging = props["LoggingConfiguration"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert cfn["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"
    assert props["TracingConfiguration"] == {"Enabled": True}


# -- Alarms -----------------------------------------------------------------------------------------


def test_alarms_notify_the_topic_on_alarm_and_on_recovery(cfn: dict[str, Any]) -> None:
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 3
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id
        # The topic and the key policy let only this stack's alarms publish, by name.
        assert alarm["Properties"]["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), logical_id


def test_alarms_watch_failed_and_timed_out_executions_the_webhook_and_throttles(cfn: dict[str, Any]) -> None:
    watched = set().union(*(alarm_metrics(a) for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values()))
    assert ("AWS/States", "ExecutionsFailed") in watched
    assert ("AWS/States", "ExecutionsTimedOut") in watched
    assert ("AWS/ApiGateway", "5xx") in watched
    assert ("AWS/Lambda", "Errors") in watched
    assert ("AWS/Lambda", "Throttles") in watched
    webhook_errors = cfn["Resources"]["WebhookErrorsAlarm"]["Properties"]["Dimensions"]
    assert webhook_errors == [{"Name": "FunctionName", "Value": {"Ref": "StripeWebhookFunction"}}]
    throttled = [
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in resources_of(cfn, "AWS::CloudWatch::Alarm").values()
        for query in alarm["Properties"].get("Metrics", [])
        if "MetricStat" in query and query["MetricStat"]["Metric"]["MetricName"] == "Throttles"
    ]
    assert sorted(throttled) == sorted(set(EXPECTED_GRANTS) - CONDITIONAL_FUNCTIONS)


def test_no_alarm_reads_more_metrics_than_cloudwatch_allows(cfn: dict[str, Any]) -> None:
    # A PutMetricAlarm takes at most 10 MetricStat queries (a hard limit); CloudFormation fails the deployment.
    # docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html
    for logical_id, alarm in resources_of(cfn, "AWS::CloudWatch::Alarm").items():
        queries = alarm["Properties"].get("Metrics", [])
        assert sum("MetricStat" in query for query in queries) <= 10, logical_id
        assert len(queries) <= 20, logical_id
        for query in queries:
            if "Expression" in query:
                ids = {q["Id"] for q in queries if "MetricStat" in q}
                assert set(re.findall(r"FILL\((\w+), 0\)", query["Expression"])) == ids, logical_id


def test_one_execution_needing_attention_or_one_orphaned_payment_is_enough_to_alarm(cfn: dict[str, Any]) -> None:
    # The reconciler publishes these (Powertools EMF: the namespace and the service dimension of the Globals)
    env = sam_template()["Globals"]["Function"]["Environment"]["Variables"]
    dimensions = [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm").values()
    single = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]): a["Properties"]
        for a in alarms
        if "MetricName" in a["Properties"] and a["Properties"]["Threshold"] == 1
    }
    for metric in ("ExecutionsNeedingAttention", "OrphanedPaidOrders", "StrayPaymentsRefunded"):
        alarm = single[(env["POWERTOOLS_METRICS_NAMESPACE"], metric)]
        assert (alarm["Dimensions"], alarm["ComparisonOperator"]) == (dimensions, "GreaterThanOrEqualToThreshold")
        assert metric in (ROOT / "functions" / "reconcile_payments" / "app.py").read_text()
    assert ("AWS/States", "ExecutionsAborted") in single
    assert ("AWS/States", "ExecutionsTimedOut") in single


def test_the_reconciler_runs_every_15_minutes_and_when_an_execution_ends_badly(cfn: dict[str, Any]) -> None:
    (schedule,) = resources_of(cfn, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "rate(15 minutes)"
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["ReconcilePaymentsFunction", "Arn"]}
    assert json.loads(schedule["Properties"]["Target"]["Input"]) == {"sweep": {}}
    (rule,) = [r for r in resources_of(cfn, "AWS::Events::Rule").values() if "Condition" not in r]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"] == {
        "status": ["FAILED", "TIMED_OUT", "ABORTED"],
        "stateMachineArn": [{"Ref": "PaymentWorkflow"}],
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ReconcilePaymentsFunction", "Arn"]}


def test_the_webhook_can_start_the_reconciler_and_nothing_else(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    webhook = sam["Resources"]["StripeWebhookFunction"]["Properties"]
    assert webhook["Environment"]["Variables"]["RECONCILER_FUNCTION"] == {"Ref": "ReconcilePaymentsFunction"}
    invokes = [g for g in grants(function_role(cfn, "StripeWebhookFunction")) if g[0].startswith("lambda:")]
    assert invokes == [("lambda:InvokeFunction", "ReconcilePaymentsFunction")]


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(cfn: dict[str, Any]) -> None:
    # CloudWatch cannot publish to a topic under the AWS managed aws/sns key: it needs a key policy.
    assert cfn["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "PaymentsKey"}
    key = cfn["Resources"]["PaymentsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceArn" in cloudwatch["Condition"]["ArnLike"]


def test_an_email_subscription_only_when_an_address_is_given(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert sam["Parameters"]["AlarmEmail"]["Default"] == ""
    assert sam["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


# -- Data -------------------------------------------------------------------------------------------


def test_tables_are_recoverable_retained_and_encrypted(cfn: dict[str, Any]) -> None:
    tables = resources_of(cfn, "AWS::DynamoDB::Table")
    # The request budget's bucket holds one number that means something for a second: nothing to keep or restore.
    assert set(tables) == {"PaymentsTable", "OrdersTable", "InventoryTable", "StripeRateLimitTable"}
    assert cfn["Resources"]["StripeRateLimitTable"]["Properties"]["SSESpecification"]["SSEEnabled"] is True
    for logical_id, table in ((k, v) for k, v in tables.items() if k != "StripeRateLimitTable"):
        assert table["DeletionPolicy"] == "Retain", logical_id
        assert table["UpdateReplacePolicy"] == "Retain", logical_id
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}, logical_id


def test_task_tokens_expire_by_ttl_on_the_attribute_the_code_writes(cfn: dict[str, Any]) -> None:
    ttl = cfn["Resources"]["PaymentsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expiresAt", "Enabled": True}
    records = (ROOT / "layers" / "payments" / "payments" / "records.py").read_text()
    assert "expiresAt = :expires" in records


# -- Webhook ----------------------------------------------------------------------------------------


def test_webhook_route_is_throttled_and_access_logged_without_headers_or_body(cfn: dict[str, Any]) -> None:
    (stage,) = resources_of(cfn, "AWS::ApiGatewayV2::Stage").values()
    throttling = stage["Properties"]["DefaultRouteSettings"]
    assert 0 < throttling["ThrottlingRateLimit"] <= throttling["ThrottlingBurstLimit"]
    access_log = stage["Properties"]["AccessLogSettings"]
    assert access_log["DestinationArn"] == {"Fn::GetAtt": ["WebhookAccessLogGroup", "Arn"]}
    variables = set(re.findall(r"\$context\.([\w.]+)", access_log["Format"]))
    assert variables and not {v for v in variables if "header" in v.lower() or "body" in v.lower()}
    json.loads(access_log["Format"])


def test_webhook_has_a_body_limit_and_reserved_concurrency(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    props = cfn["Resources"]["StripeWebhookFunction"]["Properties"]
    assert 0 < int(props["Environment"]["Variables"]["MAX_WEBHOOK_BODY_BYTES"]) <= 1024 * 1024
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveWebhookConcurrency", {"Ref": "WebhookReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert sam["Parameters"]["WebhookReservedConcurrency"]["Default"] > 0
    for function in set(EXPECTED_GRANTS) - {"StripeWebhookFunction"}:
        assert "ReservedConcurrentExecutions" not in cfn["Resources"][function]["Properties"], function


# -- Secrets ----------------------------------------------------------------------------------------


def test_no_secret_value_in_parameters_environment_or_the_created_secret(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    for name, parameter in sam["Parameters"].items():
        assert not SECRET_VALUE.search(str(parameter.get("Default", ""))), name
        assert not re.search(r"(?i)(api_?key|signing|password|token)", name), f"{name}: pass an ARN, not a secret"
    # The one way in for an existing secret is its ARN, and the parameter refuses anything else.
    assert re.fullmatch(sam["Parameters"]["ExistingStripeSecretArn"]["AllowedPattern"], "sk_live_abc") is None
    for logical_id, function in resources_of(cfn, "AWS::Lambda::Function").items():
        for key, value in function["Properties"]["Environment"]["Variables"].items():
            assert not SECRET_VALUE.search(json.dumps(value)), (logical_id, key)
            assert not re.search(r"(?i)(api_?key|signing_secret|password)", key), (logical_id, key)
        assert function["Properties"]["Environment"]["Variables"]["STRIPE_SECRET_ARN"] == {
            "Fn::If": ["CreateStripeSecret", {"Ref": "StripeSecret"}, {"Ref": "ExistingStripeSecretArn"}]
        }
    secret = cfn["Resources"]["StripeSecret"]["Properties"]
    assert all(value == "" for value in json.loads(secret["SecretString"]).values())
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["PaymentsKey", "Arn"]}
    assert not SECRET_VALUE.search(TEMPLATE.read_text())


# -- checkov ----------------------------------------------------------------------------------------


def test_every_checkov_skip_says_why(sam: dict[str, Any]) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in sam["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), logical_id
        assert len(skip.get("comment", "").split()) >= 15, (logical_id, skip["id"])


def test_stripe_events_from_eventbridge_are_archived_queued_retried_and_dead_lettered(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    conditional = {"StripeEventBus", "StripeEventArchive", "StripeEventsRule", "StripeEventsQueue",
                   "StripeEventsDeadLetterQueue", "StripeEventsQueuePolicy", "StripeEventsFunction",
                   "StripeEventsSource", "StripeEventsDeadLetterAlarm"}  # fmt: skip
    assert {name for name in conditional if resources[name].get("Condition") == "UseEventBridge"} == conditional
    bus = resources["StripeEventBus"]["Properties"]
    assert bus["Name"] == bus["EventSourceName"] == {"Ref": "StripeEventSourceName"}  # the partner source's bus
    assert resources["StripeEventArchive"]["Properties"]["SourceArn"] == {"Fn::GetAtt": ["StripeEventBus", "Arn"]}

    rule = resources["StripeEventsRule"]["Properties"]
    snapshot, thin = rule["EventPattern"]["$or"]
    assert snapshot["detail"]["data"]["object"]["metadata"]["app_id"] == [{"Ref": "AWS::StackName"}]
    assert set(thin["detail-type"]) == {f"v1.{kind}" for kind in snapshot["detail-type"]}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["StripeEventsQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["StripeEventsDeadLetterQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0

    queue = resources["StripeEventsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StripeEventsDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * resources["StripeEventsFunction"]["Properties"]["Timeout"]
    (statement,) = resources["StripeEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["StripeEventsRule", "Arn"]}}}
    source = resources["StripeEventsSource"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarm = resources["StripeEventsDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["StripeEventsDeadLetterQueue", "QueueName"]}}
    ]


def test_refused_payment_starts_are_queued_drained_at_a_bounded_rate_and_dead_lettered(
    cfn: dict[str, Any], sam: dict[str, Any]
) -> None:
    # docs/peak-load.md: StartPayment queues what StartExecution refuses; the drain's concurrency is a parameter
    resources = cfn["Resources"]
    env = resources["StartPaymentFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ADMISSION_QUEUE_URL"] == {"Ref": "AdmissionQueue"}
    source = resources["AdmissionSource"]["Properties"]
    assert source["EventSourceArn"] == {"Fn::GetAtt": ["AdmissionQueue", "Arn"]}
    assert source["FunctionName"] == {"Ref": "StartQueuedPaymentsFunction"}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "AdmissionDrainConcurrency"}}
    assert sam["Parameters"]["AdmissionDrainConcurrency"]["MinValue"] == 2  # Lambda's minimum for the setting
    queue = resources["AdmissionQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["AdmissionDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * resources["StartQueuedPaymentsFunction"]["Properties"]["Timeout"]
    alarm = resources["AdmissionDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["AdmissionDeadLetterQueue", "QueueName"]}}
    ]
    assert "Condition" not in resources["AdmissionQueue"] and "Condition" not in resources["AdmissionSource"]


def test_every_function_that_calls_stripe_shares_one_request_budget(cfn: dict[str, Any], sam: dict[str, Any]) -> None:
    # docs/peak-load.md: the budget is one parameter, read by every function, under Stripe's sandbox limit (25/s)
    env = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert env["STRIPE_REQUESTS_PER_SECOND"] == {"Ref": "StripeRequestsPerSecond"}
    assert env["RATE_LIMIT_TABLE"] == {"Ref": "StripeRateLimitTable"}
    assert 0 < sam["Parameters"]["StripeRequestsPerSecond"]["Default"] <= 25
    readers = {f for f in EXPECTED_GRANTS if ("secretsmanager:GetSecretValue", "StripeSecret") in EXPECTED_GRANTS[f]}
    pacers = {f for f in EXPECTED_GRANTS if ("dynamodb:UpdateItem", "StripeRateLimitTable") in EXPECTED_GRANTS[f]}
    assert readers == pacers
