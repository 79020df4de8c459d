"""PaymentsLayer holds exactly what the functions need and the python3.13 runtime lacks.

The layer's Makefile installs layers/payments/requirements.txt with --no-deps, so that file must
pin every dependency the runtime does not ship, and the dev venv must run those same versions.
"""

import importlib.metadata as metadata

import pytest

from bench import lambda_site


def test_every_requirement_is_pinned_to_one_version() -> None:
    for pin in lambda_site.layer_pins():
        assert str(pin.specifier).startswith("=="), f"{pin.name} is not pinned to one version"


def test_the_dev_venv_runs_the_pinned_versions() -> None:
    for pin in lambda_site.layer_pins():
        assert metadata.version(pin.name) in pin.specifier, f"{pin.name}: venv has {metadata.version(pin.name)}"


def test_the_pins_include_every_dependency_the_runtime_does_not_provide() -> None:
    needed = set(lambda_site.closure(lambda_site.layer_pins()))
    provided = set(lambda_site.layer_distributions()) | set(lambda_site.runtime_distributions())

    assert needed - provided == set()


def test_the_runtime_closure_is_what_lambda_ships_with_boto3() -> None:
    assert {"boto3", "botocore", "jmespath", "s3transfer", "python-dateutil", "six"} <= set(
        lambda_site.runtime_distributions()
    )


def test_the_packages_the_makefile_removes_are_found_and_blocked_in_tests() -> None:
    assert lambda_site.modules_removed_from_layer() == ("stripe.params",)


def test_importing_a_module_left_out_of_the_layer_fails() -> None:
    import stripe

    with pytest.raises(ModuleNotFoundError, match="left out of PaymentsLayer"):
        stripe.params  # noqa: B018 - stripe-python imports its submodules on attribute access
