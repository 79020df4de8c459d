"""An execution as a picture: the state machine's graph, drawn from its ASL, with the path its history took.

As the Step Functions console draws it: every state and every transition the ASL allows (Next, Choice
rules, Default, Catch), the states entered in colour, the transitions followed in bold, a state that
failed in red, the final state in green or red. Graphviz's `dot` turns the DOT text into SVG; without
it the DOT file is what you get.

    python -m local_runtime.pictures order-succeeded-1 --endpoint-url http://127.0.0.1:4566

draws an execution of the stack `make stack` serves (`make picture EXECUTION=order-succeeded-1`); with an
execution ARN and no endpoint, one in AWS.
"""

import argparse
import html
import json
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local_runtime.template import REGION, Template

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
PICTURES = Path(".local/pictures")
START = "(start)"
COMPARISONS = {"LessThanEquals": "≤", "GreaterThanEquals": "≥", "LessThan": "<", "GreaterThan": ">", "Equals": "=",
               "Matches": "~"}  # fmt: skip
GREY, INK, PATH, FAILED, SUCCEEDED = "#a0a0a0", "#1f2328", "#0969da", "#cf222e", "#1a7f37"
LOOKS = {  # how each type of state is drawn, beside a Task's rounded box
    "Choice": {"shape": "diamond", "style": "filled"},
    "Pass": {"style": "rounded,filled,dashed"},
    "Wait": {"style": "rounded,filled,dotted"},
    "Succeed": {"peripheries": "2"},
    "Fail": {"peripheries": "2"},
}


def transitions(definition: dict[str, Any]) -> dict[tuple[str, str, bool], str]:
    """Every transition the ASL allows, keyed (from, to, caught) and labelled with the rules that lead along it.

    A caught transition is a Catch: taken when the state fails. Rules into the same state share one edge.
    """
    rules: dict[tuple[str, str, bool], list[str]] = {(START, definition["StartAt"], False): []}
    for name, state in definition["States"].items():
        targets = [(choice["Next"], rule_label(choice), False) for choice in state.get("Choices", [])]
        if "Default" in state:
            targets.append((state["Default"], "otherwise", False))
        if "Next" in state:
            targets.append((state["Next"], "", False))
        targets += [(catch["Next"], error_label(catch["ErrorEquals"]), True) for catch in state.get("Catch", [])]
        for target, label, caught in targets:
            rules.setdefault((name, target, caught), []).append(label)
    return {key: "\n".join(dict.fromkeys(label for label in labels if label)) for key, labels in rules.items()}


def error_label(errors: list[str]) -> str:
    return ", ".join("any error" if error == "States.ALL" else error.removeprefix("States.") for error in errors)


def rule_label(rule: dict[str, Any]) -> str:
    """A Choice rule, short: `outcome.status = succeeded`, `attempt < settings.maxAttempts`."""
    for joiner in ("And", "Or"):
        if joiner in rule:
            # An `IsPresent: true` beside a comparison of the same variable only guards it: leave it out.
            compared = {part.get("Variable") for part in rule[joiner] if part.get("IsPresent") is not True}
            shown = [p for p in rule[joiner] if not (p.get("IsPresent") is True and p.get("Variable") in compared)]
            return f"\n{joiner.lower()} ".join(rule_label(part) for part in shown)
    if "Not" in rule:
        return f"not ({rule_label(rule['Not'])})"
    if "Variable" not in rule:
        return str(rule.get("Condition", "?"))  # JSONata
    variable = rule["Variable"].removeprefix("$.")
    test, value = next((k, v) for k, v in rule.items() if k not in ("Variable", "Next", "Comment"))
    if test.startswith("Is"):  # IsPresent, IsNull, IsString, ...
        return f"{variable} {'is' if value else 'is not'} {test[2:].lower()}"
    comparison = test.removesuffix("Path")
    symbol = next((s for suffix, s in COMPARISONS.items() if comparison.endswith(suffix)), comparison)
    operand = value.removeprefix("$.") if test.endswith("Path") else json.dumps(value).strip('"')
    return f"{variable} {symbol} {operand}"


@dataclass
class ExecutionPath:
    """What an execution's history says it did."""

    entered: list[str] = field(default_factory=list)  # state names in order, repeats included
    failures: dict[int, str] = field(default_factory=dict)  # visit (index in entered) -> the error it ended with
    status: str = "RUNNING"
    ending: str = ""  # the execution's error and cause, if it failed

    @property
    def followed(self) -> Counter[tuple[str, str, bool]]:
        """Transitions taken, keyed as `transitions` keys them: a visit that failed left through a Catch."""
        sources = [START, *self.entered]
        return Counter((sources[i], state, i - 1 in self.failures) for i, state in enumerate(self.entered))

    @property
    def failed(self) -> dict[str, str]:
        return {self.entered[visit]: error for visit, error in self.failures.items()}

    @property
    def final_state(self) -> str | None:
        return self.entered[-1] if self.entered and self.status != "RUNNING" else None


def path_of(history: list[dict[str, Any]]) -> ExecutionPath:
    path, ended_in_fail_state = ExecutionPath(), False
    for event in history:
        kind = event["type"]
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        visit = len(path.entered) - 1
        if kind.endswith("StateEntered"):
            path.entered.append(details["name"])
            ended_in_fail_state = kind == "FailStateEntered"
        elif kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            path.status = {"ExecutionTimedOut": "TIMED_OUT"}.get(kind, kind.removeprefix("Execution").upper())
            path.ending = ": ".join(filter(None, (details.get("error"), details.get("cause"))))
            if path.status != "SUCCEEDED" and not ended_in_fail_state and visit >= 0:
                path.failures.setdefault(visit, details.get("error") or path.status)
        elif kind.endswith(("Failed", "TimedOut")) and visit >= 0:
            path.failures[visit] = details.get("error") or kind
        elif kind.endswith("Succeeded") and visit >= 0:  # a Retry that worked: the state did not fail
            path.failures.pop(visit, None)
    return path


def draw(definition: dict[str, Any], path: ExecutionPath, title: str) -> str:
    """The picture as Graphviz DOT. Each node's and edge's `class` says whether the execution went there."""
    visits, followed, failed = Counter(path.entered), path.followed, path.failed
    label = f"{title}\n{path.status}" + (f" in {path.final_state}" if path.final_state else "")
    label += f"\n{path.ending[:120]}" if path.ending else ""
    lines = [
        "digraph execution {",
        f"  graph [label={_quote(label)}, labelloc=t, fontsize=16, fontname=Helvetica, nodesep=0.35, ranksep=0.45];",
        f'  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=11, fillcolor=white, '
        f'color="{GREY}", fontcolor="{GREY}"];',
        f'  edge [fontname=Helvetica, fontsize=9, color="{GREY}", fontcolor="{GREY}", arrowsize=0.7];',
        _statement(
            _quote(START),
            {"label": "", "shape": "circle", "width": "0.18", "style": "filled", "fillcolor": INK, "color": INK},
            ["state", "entered"],
        ),
    ]
    for name, state in definition["States"].items():
        attributes, classes = {"label": name, **LOOKS.get(state["Type"], {})}, ["state"]
        if visits[name]:
            attributes.update(color=PATH, fontcolor=INK, fillcolor="#ddf4ff", penwidth="2")
            attributes["label"] += f" ×{visits[name]}" if visits[name] > 1 else ""
            classes.append("entered")
        if name in failed:
            attributes.update(
                color=FAILED, fillcolor="#ffebe9", penwidth="2.5", label=f"{attributes['label']}\n✗ {failed[name]}"
            )
            classes.append("failed")
        if name == path.final_state:
            colour = SUCCEEDED if path.status == "SUCCEEDED" else FAILED
            attributes.update(color=colour, fillcolor=colour, fontcolor="white", penwidth="3")
            classes.append("final")
        lines.append(_statement(_quote(name), attributes, classes))
    for (source, target, caught), label in transitions(definition).items():
        attributes, classes = {"label": label}, ["transition"]
        if caught:
            attributes["style"] = "dashed"
            classes.append("caught")
        if times := followed[(source, target, caught)]:
            attributes.update(color=PATH, fontcolor=PATH, penwidth="2.5")
            attributes["label"] += f" ×{times}" if times > 1 else ""
            classes.append("followed")
        lines.append(_statement(f"{_quote(source)} -> {_quote(target)}", attributes, classes))
    return "\n".join([*lines, "}", ""])


def _statement(subject: str, attributes: dict[str, str], classes: list[str]) -> str:
    """One DOT node or edge; Graphviz carries `class` into the SVG too."""
    pairs = ", ".join(f"{key}={_quote(value)}" for key, value in {**attributes, "class": " ".join(classes)}.items())
    return f"  {subject} [{pairs}];"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def picture_of(stepfunctions: Any, execution_arn: str, title: str) -> str:
    """DOT for one execution, from the definition it ran and its history, as any Step Functions API gives them."""
    definition = stepfunctions.describe_state_machine_for_execution(executionArn=execution_arn)["definition"]
    pages = stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return draw(json.loads(definition), path_of([event for page in pages for event in page["events"]]), title)


def save(dot: str, folder: Path, stem: str) -> Path:
    """Write `stem`.dot and, where Graphviz's `dot` is installed, `stem`.svg. Returns the picture's path."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{stem}.dot"
    source.write_text(dot)
    if shutil.which("dot") is None:
        return source
    subprocess.run(["dot", "-Tsvg", "-o", str(source.with_suffix(".svg")), str(source)], check=True)
    return source.with_suffix(".svg")


def write_index(folder: Path, pictures: list[tuple[str, Path]]) -> Path:
    """An HTML page with every (caption, picture) in order."""
    sections = [
        f"<h2>{html.escape(caption)}</h2>\n"
        + (f'<img src="{picture.name}" alt="{html.escape(caption)}">' if picture.suffix == ".svg" else
           f'<p><a href="{picture.name}">{picture.name}</a>: Graphviz is not installed to draw it '
           "(<code>apt-get install graphviz</code>, <code>brew install graphviz</code>)</p>")
        for caption, picture in pictures
    ]  # fmt: skip
    index = folder / "index.html"
    index.write_text(
        '<!doctype html>\n<meta charset="utf-8">\n<title>Executions</title>\n'
        "<style>body{font-family:sans-serif;margin:2em} img{max-width:100%;border:1px solid #ddd}</style>\n"
        "<h1>Executions</h1>\n<p>States entered are blue, transitions followed bold, a failed state red, the "
        "final state green or red; dashed transitions are Catches.</p>\n" + "\n".join(sections) + "\n"
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("execution", help="an execution's name (of the stack's state machine) or ARN")
    parser.add_argument("--endpoint-url", help="a Step Functions endpoint, e.g. make stack's http://127.0.0.1:4566")
    parser.add_argument("--stack", default="stripe-payments", help="the stack whose state machine ran it, by name")
    args = parser.parse_args(argv)
    execution_arn = args.execution
    if args.endpoint_url:  # the local stack takes any credentials
        client = boto3.client("stepfunctions", endpoint_url=args.endpoint_url, **FAKE_CREDENTIALS)
    else:
        client = boto3.client(
            "stepfunctions", region_name=execution_arn.split(":")[3] if ":" in execution_arn else None
        )
    if not execution_arn.startswith("arn:"):
        template = Template(args.stack)
        state_machine, _ = template.state_machine(next(iter(template.of_type("AWS::Serverless::StateMachine"))))
        pages = client.get_paginator("list_state_machines").paginate()
        arn = next((m["stateMachineArn"] for p in pages for m in p["stateMachines"] if m["name"] == state_machine), "")
        if not arn:
            parser.error(f"no state machine {state_machine} there; is `make stack` running?")
        execution_arn = f"{arn.replace(':stateMachine:', ':execution:')}:{execution_arn}"
    name = execution_arn.rsplit(":", 1)[-1]
    picture = save(picture_of(client, execution_arn, name), PICTURES, name)
    print(picture if picture.suffix == ".svg" else f"{picture} (install Graphviz to draw it as SVG)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
