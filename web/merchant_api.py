"""The merchant's client for this stack's merchant API: SigV4-signed (IAM) requests, standard library and botocore.

    api = MerchantApi("https://abc123.execute-api.eu-west-1.amazonaws.com", region="eu-west-1")
    api.start_payment(order)          # 202: {"orderId", "executionArn", "statusUrl"}, or, while Step Functions
                                      # refuses starts, {"orderId", "status": "queued", "statusUrl"}
    api.payment(order_id)             # 200: {"status", "payment": {"clientSecret", "nextAction", ...}, ...}

The credentials are the default chain's (the merchant backend's IAM role, allowed MerchantApiInvokeArn).
"""

import json
import urllib.error
import urllib.request
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class MerchantApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


class MerchantApi:
    def __init__(self, base_url: str, *, region: str, credentials: Credentials | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._region = region
        self._credentials = credentials or botocore.session.get_session().get_credentials()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/payments", order)

    def payment(self, order_id: str) -> dict[str, Any]:
        return self._request("GET", f"/payments/{order_id}")

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(method=method, url=self.base_url + path, data=data,
                             headers={"Content-Type": "application/json"} if data else {})  # fmt: skip
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(request)
        prepared = urllib.request.Request(request.url, data=data, method=method, headers=dict(request.headers))
        try:
            with self._opener.open(prepared, timeout=10) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as error:
            raise MerchantApiError(error.code, json.loads(error.read() or b"{}")) from error
