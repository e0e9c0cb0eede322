"""forget_classes on one timm model per recipe family, BatchNorm and LayerNorm (random weights, tiny data)."""

import copy

import pytest
import torch

from conftest import state_equal
from zeroshot_unlearn import forget_classes, load_model
from zeroshot_unlearn.data import ImageTensorDataset
from zeroshot_unlearn.recipes import resolve_recipe_name

TINY = {"generator.steps": 2, "generator.batch_size": 8, "impair.epochs": 1.0, "repair.epochs": 1.0,
        "impair.batch_size": 16, "repair.batch_size": 16, "impair.anti_memory_batch": 8,
        # a phase epoch of the 48 images given (not the schedule's floor of 2,500): the wiring is under test here
        "min_epoch_images": 48,
        # random weights: the self-check refuses a model that does not recognise its classes (test_selfcheck)
        "self_check.enabled": False}


@pytest.mark.parametrize("name, kwargs", [
    ("resnet10t", {}),
    ("mobilenetv3_small_100", {}),
    ("efficientnet_b0", {}),
    ("convnext_atto", {}),
    ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
])
def test_timm_models_run_end_to_end(name, kwargs):
    torch.manual_seed(0)
    model = load_model(name, num_classes=4, **kwargs)
    size = model.pretrained_cfg["input_size"]
    if "img_size" not in kwargs:  # convnets take any size; test them at CIFAR's
        size = (3, 32, 32)
        model.pretrained_cfg["input_size"] = size
    retain = ImageTensorDataset(torch.randn(48, *size), torch.tensor([0, 1, 2] * 16))
    before = copy.deepcopy(model)
    result = forget_classes(model, [3], retain=retain, overrides=TINY, progress=False)
    assert state_equal(model, before)
    assert not state_equal(result.model, before)
    assert result.recipe.name == resolve_recipe_name(name) != "default"  # its family's own recipe
    with torch.no_grad():
        assert result.model(retain.x[:2]).shape == (2, 4)


@pytest.mark.parametrize("name, kwargs", [
    ("convnext_atto", {}),
    ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
])
def test_data_free_mode_runs_on_layernorm_models(name, kwargs):
    # No BatchNorm statistics to match: the generator fits without the prior and memories still flow.
    torch.manual_seed(0)
    model = load_model(name, num_classes=4, **kwargs)
    model.pretrained_cfg["input_size"] = (3, 32, 32)
    before = copy.deepcopy(model)
    result = forget_classes(model, [3], retain=None, overrides={**TINY, "data_free.memories_per_epoch": 32},
                            progress=False)
    assert result.method == "anti_memory_data_free" and result.forget_images_used == 0
    assert result.retained_images == 0
    assert state_equal(model, before) and not state_equal(result.model, before)
