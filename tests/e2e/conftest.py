"""One local stack (template.yaml on moto + a local Stripe) shared by the end-to-end tests."""

from collections.abc import Callable, Iterator

import pytest

from local_runtime.engine import LocalCloud
from local_runtime.fake_stripe import FakeStripe
from local_runtime.scenarios import (
    LOCAL_PARAMETERS,
    LOCAL_TIMING,
    Outcome,
    Scenario,
    run_scenario,
    seed_stack,
    use_destination,
)

API_KEY = "sk_test_e2e"
SIGNING_SECRET = "whsec_e2e"


@pytest.fixture(scope="package")
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, async_settle_seconds=0.3) as fake:
        yield fake


@pytest.fixture(scope="package")
def cloud(stripe: FakeStripe) -> Iterator[LocalCloud]:
    with LocalCloud(
        stripe_api_base=stripe.url,
        stripe_api_key=API_KEY,
        webhook_signing_secret=SIGNING_SECRET,
        parameters=LOCAL_PARAMETERS,
        **LOCAL_TIMING,
    ) as local:
        stripe.add_webhook_endpoint(local.url_of("/webhooks/stripe"))
        seed_stack(local, stripe)
        yield local


@pytest.fixture(scope="package")
def scenario_outcome(cloud: LocalCloud, stripe: FakeStripe) -> Callable[[Scenario], Outcome]:
    """Each demo scenario run once for the package, its outcome read by every test that asks."""
    outcomes: dict[str, Outcome] = {}

    def outcome(scenario: Scenario) -> Outcome:
        if scenario.name not in outcomes:
            outcomes[scenario.name] = run_scenario(cloud, stripe, scenario)
        return outcomes[scenario.name]

    return outcome


@pytest.fixture(autouse=True)
def _normal_delivery(cloud: LocalCloud, stripe: FakeStripe) -> Iterator[None]:
    """Every test starts with Stripe delivering by webhook, snapshot events, no chaos."""
    yield
    stripe.set_delivery()
    use_destination(cloud, stripe, "webhook")
