"""Shared by every test: fake AWS credentials and region, handler loading, a sample order, a picture read."""

import importlib.abc
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.lambda_site import modules_removed_from_layer

ROOT = Path(__file__).resolve().parent.parent

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_SERVICE_NAME="stripe-payments-test",
)


class LeftOutOfTheLayer(importlib.abc.MetaPathFinder):
    """Modules layers/payments/Makefile deletes from PaymentsLayer: importing one works in the dev
    venv and fails in Lambda, so it fails every test here too."""

    modules = modules_removed_from_layer()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if any(name == module or name.startswith(module + ".") for module in self.modules):
            raise ModuleNotFoundError(f"{name} is left out of PaymentsLayer (layers/payments/Makefile)", name=name)


sys.meta_path.insert(0, LeftOutOfTheLayer())


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions.{name}.app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE_CUSTOMER = "cus_Q1w2E3r4"  # a local Stripe that sees sample_order's payments must know it: add_customer


def sample_order(**overrides: Any) -> dict[str, Any]:
    order = {
        "orderId": "order-1001",
        "amount": 2500,
        "currency": "usd",
        "customer": {"id": SAMPLE_CUSTOMER, "email": "ada@example.com"},
        "paymentMethod": "pm_card_visa",
        "items": [
            {"sku": "MUG-BLUE", "quantity": 2, "unitAmount": 1000},
            {"sku": "TEA-EARL", "quantity": 1, "unitAmount": 500},
        ],
    }
    order.update(overrides)
    return order


DOT_NODE = re.compile(r'^  "(?P<name>[^"]+)" \[.*class="(?P<classes>[^"]+)"\];$', re.MULTILINE)
DOT_EDGE = re.compile(r'^  "(?P<source>[^"]+)" -> "(?P<target>[^"]+)" \[.*class="(?P<classes>[^"]+)"\];$', re.MULTILINE)


def drawn(dot: str) -> tuple[dict[str, set[str]], list[tuple[str, str, set[str]]]]:
    """What a picture's DOT draws: each state's classes, each transition's (from, to, classes)."""
    nodes = {m["name"]: set(m["classes"].split()) for m in DOT_NODE.finditer(dot)}
    edges = [(m["source"], m["target"], set(m["classes"].split())) for m in DOT_EDGE.finditer(dot)]
    return nodes, edges
