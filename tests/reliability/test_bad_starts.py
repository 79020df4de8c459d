"""Bad start inputs: each ends in the OrderRejected Fail state, its cause naming the field, nothing charged."""

from collections.abc import Iterator

import pytest

from local_runtime.reliability import BAD_STARTS, PATIENT_PARAMETERS, BadStart, StartResult, local_stack, run_bad_starts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, StartResult]]:
    with local_stack(PATIENT_PARAMETERS["manual"]) as stack:
        yield {result.name: result for result in run_bad_starts(stack, "t-start")}


@pytest.mark.parametrize("case", BAD_STARTS, ids=[case.name for case in BAD_STARTS])
def test_bad_start_input_ends_in_order_rejected_naming_the_field(
    results: dict[str, StartResult], case: BadStart
) -> None:
    result = results[case.name]

    assert (result.final_state, result.error) == ("OrderRejected", "InvalidOrder")
    assert result.cause.startswith(f"{case.field}:"), result.cause
    assert result.problems == []
