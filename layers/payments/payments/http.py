"""HTTP API (payload 2.0) answers, shared by the functions behind API Gateway."""

import json
from typing import Any


def response(status: int, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **headers},
        "body": json.dumps(body),
    }


def error(status: int, message: str, **details: Any) -> dict[str, Any]:
    return response(status, {"error": {"message": message, **details}})
