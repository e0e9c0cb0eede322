"""Real ImageNet-1k models, images read from disk, retained data that shows part of the classes, and the
head-only setting (issue 37). The tests with the real weights read a few images of the ImageNet subset in
the benchmark data folder; the full suites are `research/imagenet_lite0.sh` (benchmarks/imagenet-efficientnet_lite0/)."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FAST
from zeroshot_unlearn import InvalidRequestError, ModelError, RecipeError, forget_classes, load_model
from zeroshot_unlearn.data import ImageTensorDataset, load_data, retained_subset
from zeroshot_unlearn.engine import batch_stream

TENCH, GOLF_BALL, PARACHUTE, SAMOYED = 0, 574, 701, 258


# ----------------------------------------------------------------------------- no benchmark data needed

def test_a_1000_class_head_knows_the_imagenet_names():
    from zeroshot_unlearn.data.names import class_ids_by_name, display_names_of, label_names_of

    model = load_model("tf_efficientnet_lite0")  # random weights: the names come with the head, not the weights
    assert label_names_of(model)[0] == "n01440764" and display_names_of(model)[TENCH] == "tench"
    assert class_ids_by_name(model, ["tench", "n01440764", "0", "Tench, Tinca tinca", "golf ball"]) == [0, 0, 0, 0, 574]
    with pytest.raises(InvalidRequestError, match="ambiguous.*134.*517"):
        class_ids_by_name(model, ["crane"])  # a bird and a machine
    with pytest.raises(InvalidRequestError, match=r"unknown class name 'tenchh'.*0 tench, 1 goldfish.*\(1000 classes\)"):
        class_ids_by_name(model, ["tenchh"])


def test_a_folder_of_wnids_maps_to_the_imagenet_ids(tmp_path):
    model = load_model("tf_efficientnet_lite0")
    for wnid in ("n01440764", "n03888257"):  # tench, parachute
        (tmp_path / wnid).mkdir()
        Image.fromarray(np.zeros((60, 80, 3), dtype=np.uint8)).save(tmp_path / wnid / "a.JPEG")
    data = load_data(tmp_path, model)
    assert sorted(data.train.y.tolist()) == [TENCH, PARACHUTE]
    assert data.train.classes[PARACHUTE] == "parachute" and data.train.item_shape == (3, 224, 224)
    # the model's own eval transform (timm: bicubic resize by crop_pct, centre crop), not a plain resize
    assert "CenterCrop" in repr(data.train.transform)


def test_retained_data_of_part_of_the_classes_is_a_valid_request(digits_model, digits):
    """Six of the eight retained digits: the masked teacher keeps the other two; a class with too few is refused."""
    shown = [0, 1, 2, 4, 5, 6]
    retain = retained_subset(digits.train.of_classes(shown), [3, 7], 240, seed=0)
    assert sorted(set(retain.y.tolist())) == shown and len(retain) == 240  # the budget counts the shown classes
    result = forget_classes(digits_model, [3, 7], retain=retain, overrides=FAST, seed=0, progress=False)
    entry = result.history[-1]
    assert entry["retained_classes_shown"] == 6 and entry["retained_classes"] == 8
    thin = ImageTensorDataset(torch.cat([retain.x, digits.train.of_classes([8]).x[:2]]),
                              torch.cat([retain.y, torch.tensor([8, 8])]))
    with pytest.raises(Exception, match=r"class\(es\) \[8\] have fewer than 4"):
        forget_classes(digits_model, [3, 7], retain=thin, overrides=FAST, seed=0, progress=False)


def test_a_stream_from_disk_draws_the_batches_of_the_same_images_in_memory(tmp_path, digits_model, digits):
    """Images on disk go through a DataLoader with workers in the order the in-memory stream draws."""
    rows = torch.arange(0, 600, 20)
    for i, (pixels, label) in enumerate(zip(digits.train.x[rows], digits.train.y[rows])):
        folder = tmp_path / str(int(label))
        folder.mkdir(exist_ok=True)
        grey = (pixels[0] * 0.3081 + 0.1307).clamp(0, 1).mul(255).round().byte().numpy()
        Image.fromarray(grey).save(folder / f"{i:03d}.png")
    on_disk = load_data(tmp_path, digits_model).train
    in_memory = ImageTensorDataset(*map(torch.stack, zip(*[on_disk[i] for i in range(len(on_disk))])))
    streamed, held = batch_stream(on_disk, 8, seed=3), batch_stream(in_memory, 8, seed=3)
    for _ in range(5):  # past one shuffled pass (30 images, batches of 8)
        (xa, ya), (xb, yb) = next(streamed), next(held)
        assert torch.equal(ya, yb) and torch.equal(xa, xb)


def test_the_head_only_setting_changes_the_head_alone(digits_model, digits_retain):
    overrides = {"train_scope": "head", "generator": {"kind": "features", "steps": 50, "lr": 0.05,
                                                       "samples_per_class": 32}, "self_check.enabled": False}
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, overrides=overrides, seed=0, progress=False)
    before, after = digits_model.state_dict(), result.model.state_dict()
    head = {k for k in before if k.startswith("fc.")}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= head, f"non-head weights changed: {sorted(changed - head)}"
    assert {"features", "generator", "impair", "repair"} <= set(result.timings)
    again = forget_classes(digits_model, [3, 7], retain=digits_retain, overrides=overrides, seed=0, progress=False)
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in after.items())  # the seed reproduces it


def test_the_head_only_setting_refuses_what_it_cannot_run(digits_model, digits_retain):
    with pytest.raises(RecipeError, match="only train_scope: head reads"):
        forget_classes(digits_model, [3], retain=digits_retain, overrides={"generator.kind": "features"})
    with pytest.raises(RecipeError, match="data-free mode with train_scope: head.*generator.kind: features"):
        forget_classes(digits_model, [3], retain=None, overrides={"train_scope": "head"})
    with pytest.raises(ModelError, match="does not read the output of a BatchNorm or LayerNorm"):  # a ResNet adds, then pools
        forget_classes(digits_model, [3], retain=None, overrides={"train_scope": "head", "generator.kind": "features"})
    with pytest.raises(RecipeError, match="impair.feature_weight changes the backbone"):
        forget_classes(digits_model, [3], retain=digits_retain,
                       overrides={"train_scope": "head", "impair.feature_weight": 1.0})


def test_the_batchnorm_prior_is_the_pooled_output_of_the_last_batchnorm():
    """What the data-free head-only mode reads off a model: the statistics of its head's input, computed
    from the last BatchNorm's running statistics through that layer's own affine and activation."""
    from zeroshot_unlearn.generators.features import batchnorm_feature_statistics

    model = load_model("tf_efficientnet_lite0")  # random weights
    with torch.no_grad():
        model.bn2.running_mean.fill_(1.0)
        model.bn2.running_var.fill_(4.0)
        model.bn2.weight.fill_(2.0)
        model.bn2.bias.fill_(-1.0)
    mean, std = batchnorm_feature_statistics(model, (3, 64, 64), samples=512, seed=0)
    # ReLU6(-1 + 2 z), z ~ N(0, 1): mean = E[max(0, 2z - 1)] = -Phi(-0.5) + 2 phi(0.5) = 0.396 (the cap at 6 is 3.5 sigma away)
    assert mean.shape == std.shape == (1280,)
    # per channel 2,048 draws (standard error ~0.013): the average over channels is tight, each channel within 6 SE
    assert abs(mean.mean().item() - 0.396) < 0.005 and (mean - 0.396).abs().max() < 0.08, mean[:4]
    assert (std > 0).all() and (std < 0.5).all()  # pooled over 4 pixels, each image's draw is an average


# ----------------------------------------------------------------------------- the real weights and images

@pytest.fixture(scope="module")
def lite0():
    return load_model("tf_efficientnet_lite0", pretrained=True)


@pytest.fixture(scope="module")
def subset(shared_data, lite0):
    folder = shared_data / "imagenet-subset"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing from the benchmark data folder")
    return load_data(folder, lite0)


def _first(data, classes, per_class):
    rows = torch.cat([torch.nonzero(data.y == c).flatten()[:per_class] for c in classes])
    return data.subset(rows)


def test_the_real_lite0_loads_by_name_and_classifies_real_validation_images(lite0, subset):
    from zeroshot_unlearn.evaluation import predict

    assert lite0.pretrained_cfg["checkpoint_sha256"].startswith("579344248a93")
    assert lite0.pretrained_cfg["architecture"] == "tf_efficientnet_lite0"
    # wnid folders: the 20 classes at their ImageNet-1k ids
    assert sorted(set(subset.test.y.tolist())) == [0, 155, 159, 162, 167, 182, 193, 207, 217, 229, 258, 273, 482,
                                                   491, 497, 566, 569, 571, 574, 701]
    few = _first(subset.test, [TENCH, GOLF_BALL, PARACHUTE, SAMOYED], 4)
    correct = (predict(lite0, few) == few.y).float().mean().item()
    assert correct >= 0.5, f"{correct:.0%} of 16 validation images (random weights: 0.1%; published top-1 75%)"


def test_the_real_lite0_forgets_tench_on_a_short_schedule(lite0, subset):
    from zeroshot_unlearn.evaluation import forget_retain_accuracy

    retain = _first(subset.train, [GOLF_BALL, PARACHUTE, SAMOYED], 8)  # 3 of the 999 retained classes
    check = _first(subset.test, [TENCH, GOLF_BALL, PARACHUTE, SAMOYED], 6)
    df_before, dr_before = forget_retain_accuracy(lite0, check, [TENCH])
    state = copy.deepcopy(lite0.state_dict())
    result = forget_classes(lite0, ["tench"], retain=retain, eval_data=check, seed=0, progress=False,
                            overrides={"impair.epochs": 2.0, "repair.epochs": 0.5})
    df, dr = forget_retain_accuracy(result.model, check, [TENCH])
    assert df_before >= 50 and df == 0.0, (df_before, df)
    assert dr >= dr_before - 100 / 18, (dr, dr_before)  # at most one of the 18 retained images lost
    assert result.self_check.passed and result.history[-1]["retained_classes_shown"] == 3
    assert all(torch.equal(v, state[k]) for k, v in lite0.state_dict().items())  # the caller's model untouched


def test_the_real_lite0_forgets_tench_with_no_image_at_all(lite0, subset):
    """The data-free mode at 1,000 classes: memories of the 999 retained classes and anti-memories of tench,
    both at the head's input under the statistics the last BatchNorm implies; the shipped recipe."""
    from zeroshot_unlearn.evaluation import forget_retain_accuracy

    check = _first(subset.test, [TENCH, GOLF_BALL, PARACHUTE, SAMOYED], 6)
    df_before, dr_before = forget_retain_accuracy(lite0, check, [TENCH])
    state = copy.deepcopy(lite0.state_dict())
    result = forget_classes(lite0, [TENCH], retain=None, seed=0, progress=False)
    df, dr = forget_retain_accuracy(result.model, check, [TENCH])
    assert df_before >= 50 and df == 0.0, (df_before, df)
    assert dr >= dr_before - 100 / 18, (dr, dr_before)
    entry = result.history[-1]
    assert entry["method"] == "anti_memory_data_free" and entry["retained_images"] == 0
    assert result.self_check.passed and "memories" in result.timings
    assert all(torch.equal(v, state[k]) for k, v in lite0.state_dict().items())
