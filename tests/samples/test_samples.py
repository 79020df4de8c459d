"""Every sample under events/ through `make invoke`, each on a fresh local stack, with its documented answer."""

import io
import json

import pytest

from local_runtime import invoke, pictures
from local_runtime.samples import EVENTS, SAMPLES, sample_files
from local_runtime.template import Template

pytestmark = pytest.mark.e2e


def test_every_file_under_events_is_a_sample_with_its_answer() -> None:
    assert sample_files() == set(SAMPLES)


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_the_sample_gets_its_answer(path: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pictures, "PICTURES", tmp_path)
    sample = SAMPLES[path]

    answer = invoke.invoke(sample.target, json.loads((EVENTS / path).read_text()), log_stream=io.StringIO())

    assert {key: answer.get(key) for key in sample.answer} == sample.answer, answer


def test_a_function_given_an_event_it_cannot_read_names_the_sample_it_expects() -> None:
    start_input = json.loads((EVENTS / "start/succeeded.json").read_text())

    answer = invoke.invoke("FulfilOrderFunction", start_input, log_stream=io.StringIO())

    assert answer["errorType"] == "KeyError"
    assert answer["expected"] == "FulfilOrderFunction reads an event like events/functions/FulfilOrderFunction.json"


def test_make_invoke_without_arguments_lists_every_function_with_its_samples(capsys) -> None:
    assert invoke.main([]) == 0

    listing = capsys.readouterr().out
    template = Template("stripe-payments")
    for target in [*template.functions(), *template.of_type("AWS::Serverless::StateMachine")]:
        assert f"\n{target}" in listing
    for path in SAMPLES:
        assert f"events/{path}" in listing
