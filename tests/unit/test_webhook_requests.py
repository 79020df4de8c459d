"""webhook_requests.verify_stripe_request: only a correctly signed, fresh JSON object gets through."""

import json
import time
from typing import Any

import pytest

from payments.webhook_requests import WebhookRejected, verify_stripe_request
from tests.unit._support import payment_intent_event, stripe_signature

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
TOLERANCE = 300
BODY = json.dumps(payment_intent_event("payment_intent.succeeded", "pi_req_1", event_id="evt_req_1")).encode()


def verify(
    body: bytes = BODY,
    *,
    method: str = "POST",
    content_type: str | None = "application/json",
    signature: str | None = "sign",
    timestamp: int | None = None,
    secrets: tuple[str, ...] = (SECRET,),
    max_body_bytes: int = 65536,
) -> dict[str, Any]:
    now = int(time.time())  # stripe-python checks old timestamps against the real clock
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if signature == "sign":
        signature = stripe_signature(body, SECRET, now if timestamp is None else timestamp)
    if signature is not None:
        headers["stripe-signature"] = signature
    return verify_stripe_request(
        method=method, headers=headers, body=body, signing_secrets=secrets,
        tolerance_seconds=TOLERANCE, max_body_bytes=max_body_bytes, now=now,
    )  # fmt: skip


def rejected(**kwargs: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(**kwargs)
    return caught.value


def test_correctly_signed_event_is_returned() -> None:
    event = verify()

    assert event["id"] == "evt_req_1"
    assert event["data"]["object"]["id"] == "pi_req_1"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405(method: str) -> None:
    error = rejected(method=method)

    assert error.status == 405
    assert method in error.reason


def test_lower_case_post_is_accepted() -> None:
    assert verify(method="post")["id"] == "evt_req_1"


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        pytest.param(None, "missing", id="missing"),
        pytest.param("", "missing", id="empty"),
        pytest.param("text/plain", "text/plain", id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", "application/x-www-form-urlencoded", id="form"),
    ],
)
def test_wrong_or_missing_content_type_is_415(content_type: str | None, fragment: str) -> None:
    error = rejected(content_type=content_type)

    assert error.status == 415
    assert fragment in error.reason


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_or_capitals_is_accepted(content_type: str) -> None:
    assert verify(content_type=content_type)["id"] == "evt_req_1"


def test_oversized_body_is_413() -> None:
    error = rejected(max_body_bytes=len(BODY) - 1)

    assert error.status == 413
    assert f"{len(BODY)} bytes" in error.reason


def test_body_of_exactly_the_limit_is_accepted() -> None:
    assert verify(max_body_bytes=len(BODY))["id"] == "evt_req_1"


def test_empty_body_is_400() -> None:
    error = rejected(body=b"")

    assert (error.status, error.reason) == (400, "empty body")


def test_missing_signature_header_is_400() -> None:
    error = rejected(signature=None)

    assert error.status == 400
    assert "missing Stripe-Signature" in error.reason


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("v1=" + "0" * 64, id="no-t"),
        pytest.param("t=,v1=" + "0" * 64, id="empty-t"),
        pytest.param("t=yesterday,v1=" + "0" * 64, id="non-numeric-t"),
    ],
)
def test_signature_header_without_timestamp_is_400(header: str) -> None:
    error = rejected(signature=header)

    assert error.status == 400
    assert "no timestamp" in error.reason


def test_signature_with_wrong_secret_is_400() -> None:
    header = stripe_signature(BODY, "whsec_attacker", int(time.time()))

    error = rejected(signature=header)

    assert error.status == 400
    assert "signature does not match" in error.reason


def test_tampered_body_is_400() -> None:
    # Given a header signed over the original body, and a body whose amount was changed afterwards
    header = stripe_signature(BODY, SECRET, int(time.time()))
    tampered = BODY.replace(b'"amount": 2500', b'"amount": 1')
    assert tampered != BODY

    error = rejected(body=tampered, signature=header)

    assert error.status == 400


def test_timestamp_older_than_tolerance_is_400() -> None:
    error = rejected(timestamp=int(time.time()) - TOLERANCE - 60)

    assert error.status == 400
    assert "too old" in error.reason


def test_timestamp_in_future_beyond_tolerance_is_400() -> None:
    error = rejected(timestamp=int(time.time()) + TOLERANCE + 60)

    assert error.status == 400
    assert "in the future" in error.reason


@pytest.mark.parametrize("skew", [-(TOLERANCE - 30), TOLERANCE - 30], ids=["past-within", "future-within"])
def test_timestamp_within_tolerance_is_accepted(skew: int) -> None:
    assert verify(timestamp=int(time.time()) + skew)["id"] == "evt_req_1"


def test_previous_secret_is_accepted_during_rotation() -> None:
    # Given Stripe still signs with the old secret while both are configured
    header = stripe_signature(BODY, OLD_SECRET, int(time.time()))

    assert verify(signature=header, secrets=(SECRET, OLD_SECRET))["id"] == "evt_req_1"


def test_previous_secret_is_rejected_once_rotation_is_over() -> None:
    header = stripe_signature(BODY, OLD_SECRET, int(time.time()))

    assert rejected(signature=header, secrets=(SECRET,)).status == 400


def test_header_with_several_v1_signatures_one_matching_is_accepted() -> None:
    header = stripe_signature(BODY, SECRET, int(time.time()), extra_v1=("a" * 64, "b" * 64))
    assert header.count("v1=") == 3

    assert verify(signature=header)["id"] == "evt_req_1"


def test_non_utf8_body_is_400() -> None:
    body = b'{"id": "evt_\xff\xfe"}'
    header = stripe_signature(body, SECRET, int(time.time()))

    error = rejected(body=body, signature=header)

    assert (error.status, error.reason) == (400, "body is not UTF-8")


def test_correctly_signed_malformed_json_is_400() -> None:
    error = rejected(body=b'{"id": "evt_1", "type":')

    assert (error.status, error.reason) == (400, "body is not JSON")


@pytest.mark.parametrize("body", [b"[1, 2, 3]", b'"evt_1"', b"42", b"null"], ids=["list", "string", "number", "null"])
def test_correctly_signed_json_that_is_not_an_object_is_400(body: bytes) -> None:
    error = rejected(body=body)

    assert (error.status, error.reason) == (400, "body is not a JSON object")


def test_no_signing_secret_configured_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="no webhook signing secret"):
        verify(secrets=())


def test_signature_timestamp_with_non_ascii_digit_is_400() -> None:
    error = rejected(signature="t=\u00b2,v1=" + "0" * 64)

    assert error.status == 400
