"""``docs/glossary.md`` is the contract for names: a run's history keys and the entry points' parameters are the
ones it lists, so a rename that skips the glossary (or a glossary that drifts from the code) fails here."""

import inspect
import re
from pathlib import Path

import pytest

from conftest import FAST
from zeroshot_unlearn import audit, check_request, forget_classes, plan_request

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"


def _section(title: str) -> str:
    text = GLOSSARY.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _history_keys_in_glossary() -> set[str]:
    rows = [line for line in _section("The history entry").splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`([a-z_0-9]+)`", row.split("|")[1])}


@pytest.mark.filterwarnings("ignore::zeroshot_unlearn.ForgettingWarning")  # a short schedule: not the point
def test_a_run_writes_exactly_the_history_keys_the_glossary_lists(model_copy, digits, digits_retain):
    result = forget_classes(model_copy, [3, 7], retain=digits_retain, overrides={**FAST, "self_check.enabled": True},
                            eval_data=digits.test, strict=False, progress=False)
    assert set(result.history[-1]) == _history_keys_in_glossary()
    assert result.history[-1]["eval_images"] == len(digits.test)


def _listed_parameters(function_name: str) -> list[str]:
    paragraph = " ".join(_section("Parameters of the entry points").split())
    call = re.search(rf"`{function_name}\(([^)]*)\)`", paragraph)
    assert call, f"docs/glossary.md lists no signature of {function_name}"
    return [name.strip() for name in call.group(1).replace("*,", "").split(",") if name.strip()]


def test_the_entry_points_take_the_parameters_the_glossary_lists():
    deprecated = {"check_data"}  # old names still accepted, not part of the contract
    for function, name in ((forget_classes, "forget_classes"), (check_request, "check_request"), (audit, "audit")):
        code = [p for p in inspect.signature(function).parameters if p not in deprecated]
        assert code == _listed_parameters(name), name
    # plan_request: forget_classes' parameters but those that only shape the run around the plan
    run_only = {"inplace", "progress", "strict", "depth"}
    planned = [p for p in inspect.signature(plan_request).parameters]
    assert planned == [p for p in _listed_parameters("forget_classes") if p not in run_only]


def test_every_word_the_glossary_gives_a_parameter_is_defined_in_its_tables():
    tables = GLOSSARY.read_text().split("## Parameters of the entry points")[0]
    defined = set(re.findall(r"^\| `([a-z_]+)`", tables, flags=re.M))
    for word in ("retain", "eval_data", "forget_data", "training_log", "generator", "forget", "requested", "classes"):
        assert word in defined, word


@pytest.mark.filterwarnings("ignore::zeroshot_unlearn.ForgettingWarning")
def test_the_old_name_of_eval_data_still_works_and_says_so(model_copy, digits, digits_retain):
    from zeroshot_unlearn import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="old name of eval_data"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, eval_data=digits.test, check_data=digits.test)
    with pytest.warns(DeprecationWarning, match="now eval_data"):
        result = forget_classes(model_copy, [3, 7], retain=digits_retain, overrides={**FAST, "self_check.enabled": True},
                                check_data=digits.test, strict=False, progress=False)
    assert result.history[-1]["eval_images"] == len(digits.test)


def test_the_old_name_of_plan_request_still_works_and_says_so(model_copy, digits_retain):
    from zeroshot_unlearn import validate_request

    with pytest.warns(DeprecationWarning, match="now plan_request"):
        plan = validate_request(model_copy, [3, 7], retain=digits_retain)
    again = plan_request(model_copy, [3, 7], retain=digits_retain)
    assert (plan.recipe, plan.forget, plan.method.name, plan.spec) == (again.recipe, again.forget, again.method.name,
                                                                        again.spec)
