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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test runs on the stack of the template's default CaptureMethod (manual) unless it asks for others
    with `@pytest.mark.parametrize("capture_method", [...], indirect=True)`."""
    asked = any(
        "capture_method" in (marker.args[0] if isinstance(marker.args[0], (list, tuple)) else marker.args[0].split(","))
        for marker in metafunc.definition.iter_markers("parametrize")
    )
    if "capture_method" in metafunc.fixturenames and not asked:
        metafunc.parametrize("capture_method", ["manual"], indirect=True, scope="package")


@pytest.fixture(scope="package")
def capture_method(request: pytest.FixtureRequest) -> str:
    """The stack's CaptureMethod. One stack (and its own Stripe account) at a time: pytest tears one down
    before it deploys the other, and orders the tests so that each is deployed once."""
    return str(request.param)


@pytest.fixture(scope="package")
def stripe(capture_method: str) -> Iterator[FakeStripe]:
    with FakeStripe(api_key=API_KEY, webhook_secret=SIGNING_SECRET, async_settle_seconds=0.3) as fake:
        yield fake


@pytest.fixture(scope="package")
def cloud(stripe: FakeStripe, capture_method: str) -> Iterator[LocalCloud]:
    with LocalCloud(
        stripe_api_base=stripe.url,
        stripe_api_key=API_KEY,
        webhook_signing_secret=SIGNING_SECRET,
        parameters={**LOCAL_PARAMETERS, "CaptureMethod": capture_method},
        **LOCAL_TIMING,
    ) as local:
        use_destination(local, stripe, "webhook")
        seed_stack(local, stripe)
        yield local


@pytest.fixture(scope="package")
def scenario_outcome(cloud: LocalCloud, stripe: FakeStripe, capture_method: str) -> Callable[[Scenario], Outcome]:
    """Each demo scenario run once per stack, its outcome read by every test that asks."""
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
