"""zeroshot-unlearn train: zoo-style checkpoints, cached by content hash, that load_model rebuilds."""

import dataclasses
import json

import pytest
import torch

from zeroshot_unlearn import load_model
from zeroshot_unlearn.cli import main
from zeroshot_unlearn.data import DataSplits, ImageTensorDataset
from zeroshot_unlearn.harness.specs import TrainConfig
from zeroshot_unlearn.harness.training import train_checkpoint
from zeroshot_unlearn.harness.specs import TrainSpec, get_train_spec
from zeroshot_unlearn.errors import InvalidRequestError

from conftest import state_equal

TINY_VIT = TrainSpec("tiny_vit", "vit_tiny_patch16_224",
                     model_kwargs={"img_size": 16, "patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2},
                     input_size=(3, 16, 16), num_classes=3,
                     train=TrainConfig(epochs=2, lr=1e-3, batch_size=16, optimizer="adamw", warmup_epochs=0.5,
                                       crop_padding=2, flip=True, no_decay_on_norm_and_bias=True))


@pytest.fixture
def tiny_data():
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 3
    x = torch.randn(48, 3, 16, 16, generator=generator) + y.view(-1, 1, 1, 1).float()
    return DataSplits(ImageTensorDataset(x[:32], y[:32]), ImageTensorDataset(x[32:], y[32:]), ["a", "b", "c"],
                      name="tiny")


def test_checkpoint_rebuilds_with_its_constructor_arguments(tmp_path, tiny_data):
    trained = train_checkpoint(TINY_VIT, tiny_data, cache=tmp_path, progress=False)
    card = json.loads(trained.path.with_suffix(".json").read_text())
    assert card["model_kwargs"]["patch_size"] == 8 and card["train"]["optimizer"] == "adamw"
    assert 0 <= card["test_accuracy"] <= 100 and card["train_images"] == 32
    model = load_model(checkpoint=trained.path)  # no name, no kwargs: all from the file
    assert model.pretrained_cfg["input_size"] == (3, 16, 16)
    assert model.patch_embed.proj.kernel_size == (8, 8) and len(model.blocks) == 1
    accuracy = float((model(tiny_data.test.x).argmax(1) == tiny_data.test.y).float().mean() * 100)
    assert round(accuracy, 2) == card["test_accuracy"]


def test_cache_hit_skips_training_and_any_change_retrains(tmp_path, tiny_data, monkeypatch):
    first = train_checkpoint(TINY_VIT, tiny_data, cache=tmp_path, progress=False)
    import zeroshot_unlearn.harness.training as train_module

    def fail(*args, **kwargs):
        raise AssertionError("trained again although the checkpoint is cached")

    monkeypatch.setattr(train_module, "train_classifier", fail)
    assert train_checkpoint(TINY_VIT, tiny_data, cache=tmp_path, progress=False).path == first.path
    monkeypatch.undo()
    other = dataclasses.replace(TINY_VIT, train=dataclasses.replace(TINY_VIT.train, lr=2e-3))
    assert train_checkpoint(other, tiny_data, cache=tmp_path, progress=False).path != first.path
    assert train_checkpoint(TINY_VIT, tiny_data, seed=1, cache=tmp_path, progress=False).path != first.path


def test_same_seed_same_weights(tmp_path, tiny_data):
    a = train_checkpoint(TINY_VIT, tiny_data, cache=tmp_path / "a", progress=False)
    b = train_checkpoint(TINY_VIT, tiny_data, cache=tmp_path / "b", progress=False)
    assert a.card["sha256"] == b.card["sha256"]


def test_train_cli_digits_writes_checkpoint_and_card(tmp_path, capsys):
    out = tmp_path / "digits.safetensors"
    assert main(["train", "--model", "digits_cnn", "--data", "digits", "--epochs", "0.2", "--out", str(out),
                 "--quiet"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "digits_cnn" and card["train"]["epochs"] == 0.2
    assert "test accuracy" in capsys.readouterr().out
    model = load_model(checkpoint=out)
    assert model.pretrained_cfg["architecture"] == "digits_cnn"
    # an existing output is kept unless --overwrite
    assert main(["train", "--model", "digits_cnn", "--data", "digits", "--epochs", "0.2", "--out", str(out),
                 "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--model", "not_a_model"], "trainable here"),
    (["--model", "resnet18", "--data", "digits"], "trained on cifar10"),
    (["--model", "digits_cnn", "--data", "/no/such/folder"], "trained on digits"),
])
def test_train_cli_refuses_bad_input(argv, message, capsys):
    assert main(["train", *argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_every_cifar_family_spec_builds_at_32x32():
    from zeroshot_unlearn.harness.specs import list_train_specs

    for name in list_train_specs():
        spec = get_train_spec(name)
        model = spec.build().eval()
        with torch.no_grad():
            assert model(torch.zeros(2, *spec.input_size)).shape == (2, spec.num_classes), name


def test_an_interrupted_training_resumes_to_the_uninterrupted_weights(tmp_path, tiny_data, monkeypatch):
    import zeroshot_unlearn.harness.training as train_module
    from zeroshot_unlearn.harness.training import train_classifier
    from zeroshot_unlearn.zoo import build_model

    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=8, crop_padding=2, flip=True, channels_last=True)

    def fresh():
        torch.manual_seed(0)
        return build_model("cifar100_resnet20", num_classes=3)

    uninterrupted = train_classifier(fresh(), tiny_data.train, cfg, progress=False)
    state = tmp_path / "run.resume.pt"
    real_phase, calls = train_module.train_phase, []

    def stop_in_epoch_three(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the session ends here
        return real_phase(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_phase", stop_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(fresh(), tiny_data.train, cfg, progress=False, resume=state, resume_key="run")
    monkeypatch.undo()
    assert torch.load(state, weights_only=True)["step"] == 2 * 4  # two epochs of 32 images in batches of 8
    with pytest.raises(InvalidRequestError, match="another training run"):
        train_classifier(fresh(), tiny_data.train, cfg, progress=False, resume=state, resume_key="other")
    torch.manual_seed(123)  # the global RNG state at the restart does not matter: the file holds it
    resumed = train_classifier(fresh(), tiny_data.train, cfg, progress=False, resume=state, resume_key="run")
    assert state_equal(resumed, uninterrupted) and not state.exists()
    assert [e["epoch"] for e in resumed.training_epochs] == [1, 2, 3]


def test_train_cli_refuses_data_with_another_class_count(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "tiny_train.npz", x=np.zeros((20, 32, 32, 3), np.uint8), y=np.arange(20) % 10)
    assert main(["train", "--model", "cifar100_resnet20", "--data", str(tmp_path), "--quiet"]) == 2
    assert "100-way head" in capsys.readouterr().err


def test_train_cli_without_writes_a_retrain_reference_that_retrain_reference_then_uses(tmp_path, capsys, monkeypatch):
    import zeroshot_unlearn.harness.training as train_module
    from zeroshot_unlearn.data import load_data
    from zeroshot_unlearn.harness.training import retrain_reference, retrain_reference_source

    out = tmp_path / "checkpoints" / "digits_cnn-retrain-without-3.safetensors"
    out.parent.mkdir()
    assert main(["train", "--model", "digits_cnn", "--data", "digits", "--epochs", "0.2", "--without", "3",
                 "--out", str(out), "--quiet"]) == 0
    assert "forget classes 0.0%" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["excluded_classes"] == [3] and card["test_accuracy_forget"] == 0.0
    assert card["train_images"] == 8000 - int((load_data("digits").train.y == 3).sum())
    assert all(e["device"] == "cpu" for e in card["epochs"]) and len(card["epochs"]) == 1
    # Shipped (a checkpoints/ folder holding file and card), the same request finds it by its cache key...
    monkeypatch.setattr("zeroshot_unlearn._resources.checkpoints_dir", lambda: out.parent)
    spec = dataclasses.replace(get_train_spec("digits_cnn"),
                               train=dataclasses.replace(get_train_spec("digits_cnn").train, epochs=0.2))
    train = load_data("digits").train
    assert retrain_reference_source("digits_cnn", train, [3], spec.train) == "shipped"
    monkeypatch.setattr(train_module, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    shipped, _ = retrain_reference("digits_cnn", train, [3], spec.train)
    assert state_equal(shipped, load_model(checkpoint=out))
    # ...and any other request is not matched to it.
    assert retrain_reference_source("digits_cnn", train, [3, 7], spec.train) is None


@pytest.mark.parametrize("argv, message", [
    (["--without", "10"], "has classes 0-9"),
    (["--without", "3", "--record-updates"], "drop it with --without"),
    (["--device", "gpu"], "not a device name"),
])
def test_train_cli_refuses_bad_without_or_device_before_any_work(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("zeroshot_unlearn.data.load_data", lambda *a, **k: pytest.fail("loaded data first"))
    assert main(["train", "--model", "digits_cnn", "--data", "digits", *argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_shipped_cifar100_timm_model_loads_by_zoo_name_as_its_timm_architecture():
    model = load_model("cifar100_resnet10t", pretrained=True)
    cfg = model.pretrained_cfg
    # built and named by timm, so the timm_resnet recipe (not the CIFAR ResNet one) matches it
    assert cfg["architecture"] == "resnet10t" and cfg["num_classes"] == 100 and cfg["input_size"] == (3, 32, 32)
    assert cfg["label_names"][69] == "rocket"
    from zeroshot_unlearn.recipes import resolve_recipe_name

    assert resolve_recipe_name(cfg["architecture"]) == "timm_resnet"
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 100)
