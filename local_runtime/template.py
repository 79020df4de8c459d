"""Read template.yaml the way CloudFormation would, for a stack that lives on this machine.

Only what the project's template uses is resolved: Ref, Fn::GetAtt (Arn), Fn::Sub, Fn::If and
Fn::Equals, parameters with their defaults, and SAM's Globals for functions.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cfnlint.decode.cfn_yaml import load

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    http_routes: list["Route"] = field(default_factory=list)


class Route(NamedTuple):
    method: str
    path: str  # may hold {parameters}
    iam: bool = False  # API Gateway's IAM authorizer: a SigV4-signed request only


class Template:
    def __init__(self, stack_name: str, parameters: dict[str, str] | None = None, path: Path = ROOT / "template.yaml"):
        self.path = path
        self.document: dict[str, Any] = load(str(path))
        self.stack_name = stack_name
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in self.document.get("Parameters", {}).items()
        }
        unknown = set(parameters or {}) - set(self.parameters)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        self.parameters.update({k: str(v) for k, v in (parameters or {}).items()})
        self.physical: dict[str, str] = {}  # logical id -> name or ARN, as Ref returns it

    @property
    def resources(self) -> dict[str, Any]:
        return self.document["Resources"]

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type and self.condition_holds(v)}

    def condition_holds(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or bool(self.resolve(self.document["Conditions"][condition]))

    def physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}"

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.physical_name(logical_id)}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                if attribute == "QueueName" and self.resources[logical_id]["Type"] == "AWS::SQS::Queue":
                    return self._ref(logical_id).rsplit("/", 1)[-1]  # Ref of a queue is its URL
                if attribute != "Arn":
                    raise ValueError(f"unsupported attribute {logical_id}.{attribute}")
                return self._arn(logical_id)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.resolve(self.document["Conditions"][condition]) else when_false)
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _sub(self, name: str) -> str:
        if "." in name:
            return str(self.resolve({"Fn::GetAtt": name}))
        return str(self._ref(name))

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
        }  # fmt: skip
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        if name in self.resources and self.resources[name]["Type"] == "AWS::Serverless::StateMachine":
            state_machine = self.resolve(self.resources[name]["Properties"]["Name"])
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{state_machine}"  # Ref of one is its ARN
        if name in self.resources:  # not deployed (yet): the name it will get
            return self.physical_name(name)
        raise KeyError(f"{name} is neither a parameter nor a resource")

    def _arn(self, logical_id: str) -> str:
        resource_type = self.resources[logical_id]["Type"]
        if resource_type == "AWS::Serverless::Function":
            return self.function_arn(logical_id)
        if resource_type == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self._ref(logical_id)}"
        if resource_type == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.physical_name(logical_id)}"
        if resource_type == "AWS::Events::EventBus":
            return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{self._ref(logical_id)}"
        if resource_type == "AWS::Events::Rule":
            return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self.physical_name(logical_id)}"
        raise ValueError(f"no ARN for {logical_id} ({resource_type})")

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = {**globals_, **resource["Properties"]}
            environment = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            routes = [
                Route(
                    str(event["Properties"]["Method"]).upper(),
                    str(event["Properties"]["Path"]),
                    (event["Properties"].get("Auth") or {}).get("Authorizer") == "AWS_IAM",
                )
                for event in resource["Properties"].get("Events", {}).values()
                if event["Type"] == "HttpApi"
            ]
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=self.physical_name(logical_id),
                arn=self.function_arn(logical_id),
                code_dir=self.path.parent / props["CodeUri"],
                handler=props["Handler"],
                environment={k: str(self.resolve(v)) for k, v in environment.items()},
                http_routes=routes,
            )
        return specs

    def state_machine(self, logical_id: str) -> tuple[str, str]:
        """The state machine's name and its definition with every substitution made."""
        props = self.resources[logical_id]["Properties"]
        definition = (self.path.parent / props["DefinitionUri"]).read_text()
        substitutions = {k: str(self.resolve(v)) for k, v in props.get("DefinitionSubstitutions", {}).items()}
        definition = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: substitutions[m.group(1)], definition)
        return str(self.resolve(props["Name"])), definition
