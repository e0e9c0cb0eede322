"""Requests that forget most of a model, and the schedule's floor and ceiling."""

import math

import pytest
import torch

from zeroshot_unlearn import forget_classes
from zeroshot_unlearn.data import retained_subset
from zeroshot_unlearn.engine import BatchStream
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.methods.anti_memory import impair_scale


def test_impair_scales_only_when_more_classes_are_forgotten_than_kept():
    assert impair_scale("forget_ratio", 2, 8) == 1.0 and impair_scale("forget_ratio", 5, 5) == 1.0
    assert impair_scale("forget_ratio", 8, 2) == 2.0
    assert impair_scale("forget_ratio", 90, 10) == pytest.approx(3.0)
    assert impair_scale("none", 8, 2) == 1.0


def test_schedule_floor_and_ceiling():
    def steps(images, low, high=0):
        return BatchStream(torch.zeros(images, 1), torch.zeros(images, dtype=torch.long), 100, 0).steps_for(
            1.0, low, high)

    assert steps(500, 2500) == 25  # a small subset repeats up to the floor
    assert steps(5000, 2500) == 50  # no ceiling: the whole subset
    assert steps(5000, 2500, 2500) == 25  # the ceiling samples it
    assert steps(5000, 2500, 1000) == 25  # never under the floor
    assert steps(1500, 0, 2500) == 15


def test_nine_of_ten_digits_are_forgotten_by_the_default(digits_model, digits):
    forget = list(range(1, 10))
    retain = retained_subset(digits.train, forget, 400, seed=0)
    assert set(retain.y.tolist()) == {0}  # one retained class is a valid request
    result = forget_classes(digits_model, forget, retain=retain, seed=0, progress=False,
                            overrides={"self_check.enabled": False})
    df, dr = forget_retain_accuracy(result.model, digits.test, forget)
    df_before, dr_before = forget_retain_accuracy(digits_model, digits.test, forget)
    assert df_before > 90 and df <= 1.0, df
    assert dr >= dr_before - 1.0, (dr_before, dr)  # the one retained class keeps its accuracy
    # the impair ran sqrt(9 / 1) = 3 times the steps of a request that keeps as many classes as it forgets
    assert math.isclose(impair_scale(result.recipe.impair_scaling, 9, 1), 3.0)
