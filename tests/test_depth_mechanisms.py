"""The deep-forgetting mechanisms' building blocks (benchmarks/RESULTS.md §11 measures what they buy):
the warm-up schedule, BatchNorm re-estimation, channel-restricted shrink-and-perturb, the retained
head rows' span, the feature objectives and the class-mean head, each on its invariant."""

import pytest
import torch
import torch.nn as nn

from conftest import FAST, state_equal
from zeroshot_unlearn import RecipeError, forget_classes
from zeroshot_unlearn.engine import warmup_factor
from zeroshot_unlearn.methods.anti_memory import (ClassMeanHead, FeatureTargets, feature_objective_loss,
                                                  retained_span)
from zeroshot_unlearn.recipes import AntiMemoryPhase
from zeroshot_unlearn.surgery import conv_weights_in, recalibrate_batchnorm, shrink_perturb


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_warmup_rises_linearly_then_follows_the_schedule(schedule):
    factor = warmup_factor(0.25, schedule, steps=100)
    assert [factor(i) for i in range(3)] == pytest.approx([1 / 25, 2 / 25, 3 / 25])
    assert factor(24) == pytest.approx(1.0)
    if schedule == "constant":
        assert factor(99) == 1.0
    else:
        assert factor(25) == pytest.approx(1.0)
        assert factor(25 + 75 // 2) == pytest.approx(0.5, abs=0.03)
        assert factor(99) < 0.001
        assert all(factor(i) >= factor(i + 1) for i in range(25, 99))


def test_batchnorm_is_reestimated_as_the_plain_average_of_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    model[0].running_mean.fill_(5.0)
    x = torch.randn(64, 3, 4, 4) * 2 + 1
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.eval()
    assert recalibrate_batchnorm(model, x.split(16)) == 2
    assert torch.allclose(model[0].running_mean, x.mean((0, 2, 3)), atol=1e-5)
    assert not model.training and model[0].momentum == 0.1  # mode and momentum as they were
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_shrink_perturb_can_be_confined_to_some_output_channels(model_copy):
    name = "features.8.weight"
    before = dict(model_copy.named_parameters())[name].detach().clone()
    rows = {name: torch.tensor([1, 4])}
    assert shrink_perturb(model_copy, ["features.8"], 0.5, 0.5, seed=0, rows=rows) == 1
    after = dict(model_copy.named_parameters())[name].detach()
    changed = (after != before).flatten(1).any(1)
    assert changed.nonzero().flatten().tolist() == [1, 4]
    assert list(conv_weights_in(model_copy, ["features.8"])) == [name]


def test_retained_span_holds_the_retained_rows_and_drops_the_forget_directions():
    torch.manual_seed(0)
    rows = torch.randn(10, 64)
    retained, forget = [0, 1, 2, 4, 5, 6, 8, 9], [3, 7]
    basis = retained_span(rows, retained, forget, drop_forget=False)
    assert basis.shape == (64, 8) and torch.allclose(basis.T @ basis, torch.eye(8), atol=1e-5)
    assert torch.allclose(basis @ (basis.T @ rows[retained].T), rows[retained].T, atol=1e-4)
    narrow = retained_span(rows, retained, forget, drop_forget=True)
    assert narrow.shape == (64, 6) and torch.allclose(narrow.T @ narrow, torch.eye(6), atol=1e-5)
    forget_rows = rows[forget] - rows.mean(0)
    assert (narrow.T @ forget_rows.T).abs().max() < 1e-4  # no forget direction left
    assert torch.allclose(basis @ (basis.T @ narrow), narrow, atol=1e-5)  # inside the retained span


def _targets(dim=8):
    prototypes = torch.randn(4, dim)
    return FeatureTargets(prototypes, prototypes.mean(0), torch.tensor(1.0), {})


def test_feature_objectives_reward_what_they_say():
    torch.manual_seed(0)
    targets, labels, assigned = _targets(), torch.tensor([0, 0, 1, 1]), torch.tensor([2, 3, 2, 3])
    contract = AntiMemoryPhase(feature_objective="contract")
    assert feature_objective_loss(contract, torch.zeros(4, 8), labels, assigned, targets) == 0
    assert feature_objective_loss(contract, torch.ones(4, 8), labels, assigned, targets) > 0
    disperse = AntiMemoryPhase(feature_objective="disperse")
    together = torch.ones(4, 8)
    apart = torch.eye(8)[:4]
    assert feature_objective_loss(disperse, together, labels, assigned, targets) == pytest.approx(1.0)
    assert feature_objective_loss(disperse, apart, labels, assigned, targets) == pytest.approx(0.0)
    prototype = AntiMemoryPhase(feature_objective="prototype")
    assert feature_objective_loss(prototype, targets.prototypes[assigned], labels, assigned, targets) == 0


def test_class_mean_head_classifies_by_cosine_to_retained_means_and_tracks_them():
    torch.manual_seed(0)
    targets = _targets()
    head = ClassMeanHead(targets, retained=[1, 3])
    near = targets.prototypes[[1, 3]] * 3  # same directions, other norm: cosine logits ignore the norm
    far = targets.prototypes[[3, 1]]
    labels = torch.tensor([1, 3])
    assert head.loss(near, labels) < head.loss(far, labels)
    before = head.means.clone()
    head.loss(near, labels)
    assert torch.allclose(head.means, 0.9 * before + 0.1 * near, atol=1e-6)


def test_unknown_feature_objective_lists_the_choices():
    with pytest.raises(RecipeError, match="feature_objective.*contract.*disperse.*prototype"):
        forget_classes(nn.Linear(2, 2), [0], retain=None, overrides={"impair.feature_objective": "push"})


@pytest.mark.parametrize("overrides", [
    {"impair.warmup": 0.3, "impair.recalibrate_bn": True},
    {"impair.span_weight": 1.0, "impair.span_drop_forget": True},
    {"impair.class_mean_weight": 1.0},
    {"impair.feature_weight": 1.0, "impair.feature_objective": "disperse"},
    {"impair.perturb_scope": ["features.8"], "impair.shrink": 0.5, "impair.perturb": 0.5,
     "impair.perturb_channels": 0.25},
], ids=["warmup+recalibrate", "span", "class-mean", "disperse", "channels"])
def test_each_mechanism_runs_end_to_end_reproducibly_and_is_recorded(overrides, digits_model, digits_retain,
                                                                     run_without_mechanisms):
    def run():
        return forget_classes(digits_model, [3, 7], retain=digits_retain, overrides={**FAST, **overrides},
                              seed=0, progress=False)
    first, second = run(), run()
    assert state_equal(first.model, second.model)
    # the key changes what the run does: the same run (same seed) without it ends elsewhere, so a loss
    # term that reached no weight would fail here
    assert not state_equal(first.model, run_without_mechanisms.model)
    assert {k for k in overrides} <= set(first.recipe_keys_read)


@pytest.fixture(scope="module")
def run_without_mechanisms(digits_model, digits_retain):
    return forget_classes(digits_model, [3, 7], retain=digits_retain, overrides=FAST, seed=0, progress=False)
