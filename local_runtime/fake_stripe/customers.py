"""Customers (https://docs.stripe.com/api/customers): what saved PaymentMethods are attached to.

Create (https://docs.stripe.com/api/customers/create) takes no required parameter; retrieve
(https://docs.stripe.com/api/customers/retrieve) answers Stripe's 404 `resource_missing` for an unknown id.
"""

from local_runtime.fake_stripe.clock import Clock
from local_runtime.fake_stripe.errors import find
from local_runtime.fake_stripe.forms import check_known, read_metadata, read_str
from local_runtime.fake_stripe.objects import Obj, RequestRef, new_id, snapshot

CREATE_PARAMS = {"email", "name", "description", "phone", "metadata", "expand"}


class Customers:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.customers: dict[str, Obj] = {}

    def create(self, params: Obj, request: RequestRef, customer_id: str | None = None) -> Obj:
        check_known(params, CREATE_PARAMS)
        customer: Obj = {
            "id": customer_id or new_id("cus", 14),
            "object": "customer",
            "created": self._clock.timestamp(),
            "description": read_str(params, "description"),
            "email": read_str(params, "email"),
            "livemode": False,
            "metadata": read_metadata(params),
            "name": read_str(params, "name"),
            "phone": read_str(params, "phone"),
        }
        self.customers[customer["id"]] = customer
        return snapshot(customer)

    def retrieve(self, customer_id: str, params: Obj, request: RequestRef) -> Obj:
        return snapshot(find(self.customers, "customer", customer_id))

    def find(self, customer_id: str, param: str = "customer") -> Obj:
        return find(self.customers, "customer", customer_id, param)
