"""Every registered method, one table (captum-style): it forgets on the tiny digits model, uses no
forget image, and leaves its input model untouched."""

import copy

import pytest
import torch

from conftest import FAST, state_equal
from zeroshot_unlearn import (DataError, InvalidRequestError, RecipeError, forget_classes, list_methods,
                              validate_request)
from zeroshot_unlearn.engine import shrink_perturb
from zeroshot_unlearn.metrics import forget_retain_accuracy


# What each method does on the digits demo with its shipped settings: the least Df must fall
# (points) and the most Dr may fall (points; None: not asserted). Measured values in the comments.
EXPECTED = {
    # Df 99.0 -> 0-1, Dr 97.2 -> 96.5-97.4.
    "anti_memory": (50, 5), "anti_memory_features": (50, 5), "anti_memory_no_generator": (50, 5),
    "masked_kd": (50, 5), "logit_mask": (50, 5),
    # Fine-tuning on 400 retained images for 4 epochs: Df ~98.5 (catastrophic forgetting needs far more steps).
    "finetune": (0, 5),
    # UNSIR as published (Adam lr 0.02 impair): Df 0 but Dr ~35, its known retained-accuracy loss made
    # extreme by one 7-step repair epoch on 400 images.
    "unsir": (50, None),
    # Baselines that read 200 forget images, untuned defaults: gradient ascent Df ~25 / Dr ~85,
    # random relabelling Df ~49 / Dr ~83.
    "gradient_ascent": (10, None), "random_label": (10, None),
}
NEEDS_FORGET = {name for name, needs in list_methods().items() if "forget" in needs}


def test_forget_data_goes_only_to_the_baselines_that_need_it(model_copy, digits, digits_retain):
    sevens = digits.train.of_classes([7]).subset(torch.arange(50))
    with pytest.raises(InvalidRequestError, match="needs forget-class images.*need none: anti_memory"):
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
                                                                        digits_retain):
    model = copy.deepcopy(digits_model)
    before = copy.deepcopy(model)
    df_before, dr_before = forget_retain_accuracy(model, digits.test, [3, 7])
    forget_data = digits.train.of_classes([3, 7]).subset(torch.arange(200)) if method in NEEDS_FORGET else None
    result = forget_classes(model, [3, 7], retain=digits_retain, method=method, forget_data=forget_data,
                            progress=False)  # shipped recipe
    df, dr = forget_retain_accuracy(result.model, digits.test, [3, 7])
    assert result.forget_images_used == (200 if method in NEEDS_FORGET else 0) and result.method == method
    assert result.history[-1]["forget_images_used"] == result.forget_images_used
    assert state_equal(model, before)
    min_df_drop, max_dr_loss = EXPECTED[method]
    assert df < df_before - min_df_drop, f"{method}: Df {df:.1f} (before {df_before:.1f})"
    if max_dr_loss is not None:
        assert dr > dr_before - max_dr_loss, f"{method}: Dr {dr:.1f} (before {dr_before:.1f})"


def test_variants_change_only_their_settings(model_copy, digits_retain):
    plain = validate_request(model_copy, [3, 7], retain=digits_retain).recipe
    ablated = validate_request(model_copy, [3, 7], retain=digits_retain, method="anti_memory_no_generator").recipe
    assert plain.impair.anti_memory_batch > 0 and ablated.impair.anti_memory_batch == 0
    assert ablated.replace({"impair.anti_memory_batch": plain.impair.anti_memory_batch}) == plain
    overridden = validate_request(model_copy, [3, 7], retain=digits_retain, method="anti_memory_features",
                                  overrides={"impair.feature_weight": 2.0}).recipe
    assert overridden.impair.feature_weight == 2.0  # the caller's override wins over the variant's
    assert overridden.impair.retain_feature_weight == 1.0
    result = forget_classes(model_copy, [3, 7], retain=digits_retain, method="anti_memory_no_generator",
                            overrides=FAST, progress=False)
    assert result.generator is None


def test_shrink_perturb_touches_only_its_scope(model_copy):
    before = copy.deepcopy(model_copy)
    changed = shrink_perturb(model_copy, ["features.8"], shrink=0.5, noise=0.5, seed=0)
    assert changed == 1
    for (name, new), old in zip(model_copy.state_dict().items(), before.state_dict().values()):
        assert torch.equal(new, old) == (name != "features.8.weight"), name
    with pytest.raises(RecipeError, match="'layer3' names no parameter of DigitsCNN; .* fc, features"):
        shrink_perturb(model_copy, ["layer3"], shrink=0.5, noise=0.5, seed=0)
