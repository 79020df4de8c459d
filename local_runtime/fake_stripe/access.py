"""API keys (https://docs.stripe.com/keys, https://docs.stripe.com/api/authentication): who may call what.

The secret key may call anything. The publishable key is the one Stripe.js holds in the customer's browser: it
may create PaymentMethods and, with the PaymentIntent's `client_secret`, retrieve and confirm that
PaymentIntent; anything else is refused with Stripe's 403 ("This API call cannot be made with a publishable
API key ...", which stripe-python raises as PermissionError, as reported in
https://github.com/getlago/lago-api/pull/3650). Stripe.js sends the key as the `key` parameter, so that its
requests stay "simple" cross-origin requests; the Authorization header works too.
"""

import base64
import hmac
import re

from local_runtime.fake_stripe.errors import Rejected
from local_runtime.fake_stripe.objects import Obj

PUBLISHABLE_REFUSED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of "
    "your API keys at https://dashboard.stripe.com/account/apikeys."
)
# (method, path, whether the PaymentIntent's client_secret must come along, parameters Stripe.js may send)
CUSTOMER_CALLS = (
    ("GET", re.compile(r"/v1/payment_intents/[^/]+"), True, {"client_secret", "expand"}),
    (
        "POST",
        re.compile(r"/v1/payment_intents/[^/]+/confirm"),
        True,
        {
            "client_secret",
            "payment_method",
            "payment_method_data",
            "return_url",
            "setup_future_usage",
            "use_stripe_sdk",
            "receipt_email",
            "expand",
        },
    ),  # fmt: skip
    ("POST", re.compile(r"/v1/payment_methods"), False, {"type", "card", "billing_details", "metadata", "expand"}),
)


class Keys:
    def __init__(self, secret_key: str, publishable_key: str) -> None:
        self.secret_key, self.publishable_key = secret_key, publishable_key

    def authenticate(self, authorization: str | None, params: Obj) -> bool:
        """Which key made the request: True for the publishable key. Takes Stripe.js's `key` parameter out."""
        key = params.pop("key", None) if isinstance(params.get("key"), str) else None
        if authorization and authorization.startswith("Bearer "):
            key = authorization[7:].strip()
        elif authorization and authorization.startswith("Basic "):
            key = base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
        if not key:
            raise Rejected(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if hmac.compare_digest(key, self.secret_key):
            return False
        if hmac.compare_digest(key, self.publishable_key):
            return True
        masked = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
        raise Rejected(401, f"Invalid API Key provided: {masked}")

    @staticmethod
    def admit_publishable(method: str, path: str, params: Obj) -> None:
        """Refuse what the publishable key may not do, before any endpoint begins."""
        for call_method, pattern, needs_secret, allowed in CUSTOMER_CALLS:
            if call_method == method and pattern.fullmatch(path):
                if needs_secret and not params.get("client_secret"):
                    break
                unknown = sorted(set(params) - allowed)
                if unknown:
                    raise Rejected(
                        400, f"Received unknown parameter: {unknown[0]}", code="parameter_unknown", param=unknown[0]
                    )
                return
        raise Rejected(403, PUBLISHABLE_REFUSED)
