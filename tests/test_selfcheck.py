"""The retained budget must not decide whether classes are forgotten, and a run that did not forget must say so."""

import copy
import json
import warnings

import pytest

from conftest import state_equal
from zeroshot_unlearn import ForgettingFailedError, ForgettingWarning, forget_classes
from zeroshot_unlearn.cli import EXIT_NOT_FORGOTTEN, main
from zeroshot_unlearn.data import retained_subset
from zeroshot_unlearn.engine import BatchStream
from zeroshot_unlearn.evaluation import forget_retain_accuracy

ONE_STEP = {"impair.epochs": 0.01, "repair.epochs": 0.01}  # one impair step and one repair step: cannot forget


def test_a_phase_epoch_counts_at_least_the_recipe_floor():
    import torch

    small = BatchStream(torch.zeros(100, 1, 2, 2), torch.zeros(100, dtype=torch.long), 64, seed=0)
    assert small.steps_for(2.0) == 4 and small.steps_for(2.0, min_images=400) == 13
    large = BatchStream(torch.zeros(1000, 1, 2, 2), torch.zeros(1000, dtype=torch.long), 64, seed=0)
    assert large.steps_for(2.0, min_images=400) == large.steps_for(2.0) == 32


def test_a_small_retained_subset_still_forgets(digits_model, digits):
    """96 retained images (a quarter of the demo's): the schedule repeats them instead of shrinking."""
    retain = retained_subset(digits.train, [3, 7], 100, seed=0)
    result = forget_classes(digits_model, [3, 7], retain=retain, seed=0, progress=False)
    df, dr = forget_retain_accuracy(result.model, digits.test, [3, 7])
    assert df <= 2.0 and dr >= 94.0, (df, dr)
    assert result.self_check.passed is True and result.history[-1]["self_check"]["passed"] is True


def test_the_self_check_refuses_a_run_that_cannot_forget(digits_model, digits, digits_retain):
    with pytest.raises(ForgettingFailedError, match=r"classes \[3, 7\] were not forgotten: the new model still calls"
                                                    r".*strict=False") as info:
        forget_classes(digits_model, [3, 7], retain=digits_retain, overrides=ONE_STEP, seed=0, progress=False)
    failed = info.value.result
    df, _ = forget_retain_accuracy(failed.model, digits.test, [3, 7])
    assert df > 50, "the check fired on a run that really did not forget"
    assert failed.self_check.passed is False and failed.self_check.forget_rate > failed.self_check.max_forget_rate
    with pytest.warns(ForgettingWarning, match="were not forgotten"):
        anyway = forget_classes(digits_model, [3, 7], retain=digits_retain, overrides=ONE_STEP, seed=0,
                                progress=False, strict=False)
    assert anyway.self_check.passed is False and anyway.history[-1]["self_check"]["passed"] is False


def test_the_self_check_is_quiet_on_the_default_run(digits_model, digits_retain):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForgettingWarning)
        result = forget_classes(digits_model, [3, 7], retain=digits_retain, seed=0, progress=False)
    check = result.self_check
    assert check.passed is True and check.impressions >= 8 and check.original_forget_rate == 100.0
    assert check.forget_rate <= check.max_forget_rate and "self_check" in result.timings


def test_the_command_line_never_reports_a_failed_run_as_success(tmp_path, capsys):
    args = ["forget", "--model", "digits_cnn", "--classes", "3", "7", "--retain-data", "digits", "--retain-budget",
            "400", "--set", "impair.epochs=0.01", "--set", "repair.epochs=0.01", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "strict")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "were not forgotten" in err[0] and "--no-strict" in err[0]
    assert not (tmp_path / "strict").exists()

    assert main([*args, "--out", str(tmp_path / "anyway"), "--no-strict"]) == EXIT_NOT_FORGOTTEN
    assert "NOT forgotten" in capsys.readouterr().err
    row = json.loads((tmp_path / "anyway" / "metrics.json").read_text())["rows"][0]
    assert row["forgotten"] is False and row["self_check"]["passed"] is False and row["df"] > 5
    assert len(row["forgetting_failures"]) == 2  # the self-check and Df on the test split above 5%


def test_a_failed_run_leaves_an_inplace_model_untouched(model_copy, digits_retain):
    before = copy.deepcopy(model_copy)
    with pytest.raises(ForgettingFailedError):
        forget_classes(model_copy, [3, 7], retain=digits_retain, overrides=ONE_STEP, inplace=True, progress=False)
    assert state_equal(model_copy, before) and not hasattr(model_copy, "unlearning_history")
