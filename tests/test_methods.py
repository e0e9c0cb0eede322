"""Every registered method, one table (captum-style): it forgets on the tiny digits model, uses no
forget image, and leaves its input model untouched."""

import copy

import pytest
import torch

from conftest import FAST, state_equal
from zeroshot_unlearn import (DataError, InvalidRequestError, forget_classes, list_methods,
                              plan_request)
from zeroshot_unlearn.data import retained_subset
from zeroshot_unlearn.surgery import shrink_perturb, unknown_prefixes
from zeroshot_unlearn.evaluation import forget_retain_accuracy


# What each method does on the digits demo: the least Df must fall (points), the most Dr may fall
# (points), and the recipe overrides the test runs it with (None: shipped settings). Measured values
# in the comments. The Dr bounds of the methods that lose much of Dr sit about 10 points under what
# they measured, so a method that loses more than it did fails; for gkt and amnesiac, which know
# almost nothing at this budget (Dr ~12-13), the bound only catches a Dr under 5 (worse than
# predicting a single class).
EXPECTED = {
    # Df 99.0 -> 0-1, Dr 97.2 -> 96.5-97.4.
    "anti_memory": (50, 5, None), "anti_memory_features": (50, 5, None), "anti_memory_no_generator": (50, 5, None),
    "masked_kd": (50, 5, None), "logit_mask": (50, 5, None),
    # Fine-tuning on 400 retained images for 4 epochs: Df ~98.5 (catastrophic forgetting needs far more steps).
    "finetune": (0, 5, None),
    # UNSIR as published (Adam lr 0.02 impair): Df 0 but Dr ~35, its known retained-accuracy loss made
    # extreme by one 7-step repair epoch on 400 images.
    "unsir": (50, 75, None),
    # Baselines that read 100 forget images, untuned defaults: gradient ascent Df ~36 / Dr ~84,
    # random relabelling Df ~35 / Dr ~86.
    "gradient_ascent": (10, 25, None), "random_label": (10, 25, None),
    # SSD at the paper's alpha 10 / lambda 1: Df ~49, Dr ~95.5.
    "ssd": (20, 5, None),
    # Bad teacher and SCRUB at the paper's settings take 2-10 steps on this budget and leave Df ~99;
    # at the budget settings of benchmarks/RESULTS.md: bad teacher Df ~15 / Dr ~96, SCRUB Df ~15 / Dr ~93.
    "bad_teacher": (40, 5, {"bad_teacher.epochs": 10, "bad_teacher.batch_size": 32, "bad_teacher.lr": 3e-4}),
    "scrub": (40, 8, {"scrub.lr": 0.005}),
    # GKT trains a student from scratch on generator samples only; 20 pseudo batches give a student that
    # predicts one class (Df 0, Dr ~12): it forgets, and knows nothing else yet.
    "gkt": (50, 92, {"gkt.iterations": 20}),
    # Data-free mode (no image read; retain is ignored): generator memories of the retained classes.
    "anti_memory_data_free": (50, 10, {"generator.steps": 10, "impair.epochs": 0.5, "repair.epochs": 0.5}),
    # Retraining from scratch on 400 images: Df 0, Dr ~80.
    "retrain": (50, 30, {"retrain.epochs": 20}),
    # Amnesiac unlearning on a digits CNN trained 2 epochs with its log: every batch of 128 held a 3 or
    # a 7, so it undoes all 126 steps (back to the initialisation) and 4 retuning steps on 400 images
    # leave Dr ~13: Df 0 because the model knows nothing.
    "amnesiac": (50, 92, None),
}
NEEDS_FORGET = {name for name, needs in list_methods().items() if "forget" in needs}


def test_forget_data_goes_only_to_the_baselines_that_need_it(model_copy, digits, digits_retain):
    sevens = digits.train.of_classes([7]).subset(torch.arange(50))
    with pytest.raises(InvalidRequestError, match="needs forget-class images.*need none: amnesiac, anti_memory,"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, method="gradient_ascent", progress=False)
    with pytest.raises(InvalidRequestError, match="never reads forget-class images"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, forget_data=sevens, progress=False)
    with pytest.raises(DataError, match=r"class\(es\) \[1\], which are not being forgotten"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, method="random_label",
                       forget_data=digits.train.of_classes([1, 7]), progress=False)


def test_every_registered_method_has_an_expectation():
    assert set(EXPECTED) == set(list_methods())


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_every_method_forgets_without_forget_images_and_keeps_its_input(method, digits_model, digits,
                                                                        digits_retain, request):
    model = copy.deepcopy(digits_model)
    training_log = None
    if method == "amnesiac":  # it applies only to the model its log recorded
        from zeroshot_unlearn import load_model

        trained, training_log = request.getfixturevalue("digits_training_log")
        model = load_model(checkpoint=trained.path)
    before = copy.deepcopy(model)
    df_before, dr_before = forget_retain_accuracy(model, digits.test, [3, 7])
    # As bench gives them: the retained subset's per-class budget (50) of each forget class.
    others = [c for c in range(10) if c not in (3, 7)]
    forget_data = retained_subset(digits.train, others, 100, seed=0) if method in NEEDS_FORGET else None
    min_df_drop, max_dr_loss, overrides = EXPECTED[method]
    # strict=False: several baselines do not forget here, which is what this table measures.
    result = forget_classes(model, [3, 7], retain=digits_retain, method=method, forget_data=forget_data,
                            overrides=overrides, progress=False, strict=False, training_log=training_log)
    df, dr = forget_retain_accuracy(result.model, digits.test, [3, 7])
    # The self-check never calls a run that forgot a failure (it may miss partial forgetting).
    assert result.self_check.passed is not False or df > 20, f"{method}: self-check failed at Df {df:.1f}"
    assert result.forget_images_used == (100 if method in NEEDS_FORGET else 0) and result.method == method
    assert result.history[-1]["forget_images_used"] == result.forget_images_used
    assert state_equal(model, before)
    assert df < df_before - min_df_drop, f"{method}: Df {df:.1f} (before {df_before:.1f})"
    assert dr > dr_before - max_dr_loss, f"{method}: Dr {dr:.1f} (before {dr_before:.1f})"


def test_variants_change_only_their_settings(model_copy, digits_retain):
    plain = plan_request(model_copy, [3, 7], retain=digits_retain).recipe
    ablated = plan_request(model_copy, [3, 7], retain=digits_retain, method="anti_memory_no_generator").recipe
    assert plain.impair.anti_memory_batch > 0 and ablated.impair.anti_memory_batch == 0
    # the recipe names the method that runs; otherwise only the variant's own setting differs
    assert ablated.method == "anti_memory_no_generator"
    assert ablated.replace({"impair.anti_memory_batch": plain.impair.anti_memory_batch, "method": "anti_memory"}) == plain
    overridden = plan_request(model_copy, [3, 7], retain=digits_retain, method="anti_memory_features",
                                  overrides={"impair.feature_weight": 2.0}).recipe
    assert overridden.impair.feature_weight == 2.0  # the caller's override wins over the variant's
    assert overridden.impair.retain_feature_weight == 1.0
    result = forget_classes(model_copy, [3, 7], retain=digits_retain, method="anti_memory_no_generator",
                            overrides=FAST, progress=False)
    assert result.generator is None


@pytest.mark.parametrize("masked", [False, True])
def test_gkt_distils_from_the_masked_teacher_only_when_asked(model_copy, digits_retain, monkeypatch, masked):
    import zeroshot_unlearn.methods.gkt as gkt

    targets = []

    def recording(student_logits, teacher_logits, temperature):
        targets.append(teacher_logits.detach())
        return gkt_distillation(student_logits, teacher_logits, temperature)
    gkt_distillation = gkt.distillation
    monkeypatch.setattr(gkt, "distillation", recording)
    forget_classes(model_copy, [3, 7], retain=digits_retain, method="gkt", progress=False,
                   overrides={"gkt.iterations": 2, "gkt.mask_forget_logits": masked})
    # The generator's objective always sees the full teacher; the student's targets are masked on request.
    student_targets = [t for t in targets if t.isinf().any()]
    assert bool(student_targets) == masked
    for t in student_targets:
        assert t[:, [3, 7]].eq(float("-inf")).all() and t[:, [0, 1, 2, 4, 5, 6, 8, 9]].isfinite().all()


def test_shrink_perturb_touches_only_its_scope(model_copy):
    before = copy.deepcopy(model_copy)
    changed = shrink_perturb(model_copy, ["features.8"], shrink=0.5, noise=0.5, seed=0)
    assert changed == 1
    for (name, new), old in zip(model_copy.state_dict().items(), before.state_dict().values()):
        assert torch.equal(new, old) == (name != "features.8.weight"), name
    # A prefix that names nothing is refused before any work (forget_classes's validation, tested in
    # test_reliability.py), from what this function reports.
    assert unknown_prefixes(model_copy, ["layer3", "features.8", "features"]) == ["layer3"]


def test_a_new_method_is_one_class_with_its_own_settings(model_copy, digits_retain):
    """Registering a method with a settings dataclass is all it takes: its section is validated like every
    recipe key, reaches the method, and is saved when read."""
    from dataclasses import dataclass

    from zeroshot_unlearn.methods import METHODS, Method, MethodOutput, register_method
    from zeroshot_unlearn.settings import SECTIONS, Settings, check_range

    @dataclass(frozen=True)
    class ScaleSettings(Settings):
        factor: float = 0.5

        def __post_init__(self) -> None:
            check_range("scale_head.factor", self.factor, 0.0, 1.0)

    class ScaleHead(Method):
        name = "scale_head"
        needs = frozenset({"retain"})
        settings = ScaleSettings

        def run(self, ctx):
            with torch.no_grad():
                ctx.student.fc.weight.mul_(self.settings_in(ctx.recipe).factor)
            return MethodOutput(ctx.student)

    class ReturnsNothing(Method):
        name = "returns_nothing"
        needs = frozenset({"retain"})

        def run(self, ctx):
            ctx.student.fc.weight.requires_grad_(True)

    register_method(ScaleHead)
    register_method(ReturnsNothing)
    try:
        _run_scale_head(model_copy, digits_retain)
        with pytest.raises(TypeError, match="must return a MethodOutput"):  # a method run returns what it made
            forget_classes(model_copy, [3, 7], retain=digits_retain, method="returns_nothing",
                           overrides={"self_check.enabled": False}, progress=False)
    finally:
        METHODS.pop("scale_head")
        METHODS.pop("returns_nothing")
        SECTIONS.pop("scale_head")


def _run_scale_head(model_copy, digits_retain):
    from zeroshot_unlearn import RecipeError

    result = forget_classes(model_copy, [3, 7], retain=digits_retain, method="scale_head",
                            overrides={"scale_head.factor": 0.25, "self_check.enabled": False}, progress=False)
    torch.testing.assert_close(result.model.fc.weight, model_copy.fc.weight * 0.25)
    assert "scale_head.factor" in result.recipe_keys_read and "impair.lr" not in result.recipe_keys_read
    with pytest.raises(RecipeError, match="'scale_head.factor' = 2.0 is out of range"):
        forget_classes(model_copy, [3, 7], retain=digits_retain, method="scale_head",
                       overrides={"scale_head.factor": 2.0}, progress=False)
