"""API Gateway's IAM authorizer, locally: a request to an AWS_IAM route must carry a valid SigV4 signature
(service execute-api) made with the local credentials, within 5 minutes of now, as API Gateway checks it
(docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html). The signature is recomputed with botocore's
own signer over the headers the request says it signed, and compared."""

import hmac
import re
from datetime import UTC, datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CREDENTIAL = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/execute-api/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW_SECONDS = 300


def iam_denial(
    method: str, url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str
) -> str | None:
    """Why API Gateway would answer 403 to this request, or None when the signature holds."""
    lower = {name.lower(): value for name, value in headers.items()}
    match = CREDENTIAL.match(lower.get("authorization", ""))
    if match is None:
        return "Missing Authentication Token"
    if match["key"] != credentials.access_key or match["region"] != region:
        return "The security token included in the request is invalid."
    stamp = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return "Signature expired or malformed X-Amz-Date"
    if abs((datetime.now(UTC) - signed_at).total_seconds()) > MAX_SKEW_SECONDS:
        return "Signature expired"
    signed = {name: lower[name] for name in match["signed"].split(";") if name in lower}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, "execute-api", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None
