"""Request parameters: Stripe's form encoding and the validation that refuses a request before its endpoint
begins (every error here is `Rejected`: no idempotent result is saved)."""

import re
from typing import Any
from urllib.parse import parse_qsl

from local_runtime.fake_stripe.errors import Rejected, missing
from local_runtime.fake_stripe.objects import Obj

MAX_AMOUNT = 99_999_999

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(body: str) -> Obj:
    """Decode Stripe's form encoding (``a[b]=1``, ``list[0]=x``, ``list[]=x``) to nested values."""
    root: Obj = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            raise Rejected(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts):
            part = part or str(len(node))  # "list[]" appends
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise Rejected(400, f"Invalid object for parameter: {key}", param=key)
                node = child
    return {k: v if k == "metadata" else _listify(v) for k, v in root.items()}


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    value = {k: _listify(v) for k, v in value.items()}
    if value and all(k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return value


def check_known(params: Obj, allowed: set[str], nested: dict[str, set[str]] | None = None) -> None:
    """Reject parameters Stripe would not know, as Stripe does (400 parameter_unknown)."""
    names = list(params)
    for key, known in (nested or {}).items():
        if isinstance(params.get(key), dict):
            names += [f"{key}[{sub}]" for sub in params[key] if sub not in known]
    for name in names:
        if name not in allowed:
            raise Rejected(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def read_bool(params: Obj, name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise Rejected(400, f"Invalid boolean: {value}", param=name)
    return value == "true"


def to_integer(raw: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if not isinstance(raw, str) or not re.fullmatch(r"-?\d+", raw):
        raise Rejected(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=param)
    value = int(raw)
    if minimum is not None and value < minimum:
        message = f"This value must be greater than or equal to {minimum}."
        raise Rejected(400, message, code="parameter_invalid_integer", param=param)
    if maximum is not None and value > maximum:
        message = f"This value must be less than or equal to {maximum}."
        raise Rejected(400, message, code="parameter_invalid_integer", param=param)
    return value


def read_amount(params: Obj, required: bool = True) -> int | None:
    if "amount" not in params:
        if required:
            raise missing("amount")
        return None
    amount = to_integer(params["amount"], "amount", minimum=1)
    if amount > MAX_AMOUNT:
        raise Rejected(400, "Amount must be no more than $999,999.99", code="amount_too_large", param="amount")
    return amount


def read_str(params: Obj, name: str, choices: tuple[str, ...] = ()) -> str | None:
    value = params.get(name)
    if value is not None and (not isinstance(value, str) or (choices and value not in choices)):
        allowed = f": must be one of {', '.join(choices)}" if choices else ""
        raise Rejected(400, f"Invalid {name}{allowed}", param=name)
    return value


def read_metadata(params: Obj) -> dict[str, str]:
    """Metadata as Stripe stores it: string values, empty strings unset a key."""
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise Rejected(400, "Invalid hash", param="metadata")
    return {k: v for k, v in metadata.items() if v != ""}


def read_str_list(params: Obj, name: str) -> list[str] | None:
    value = params.get(name)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise Rejected(400, f"Invalid array: {name}", param=name)
    return value
