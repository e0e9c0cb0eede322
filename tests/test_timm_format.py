"""timm's own zoo format in and out: a folder timm wrote -> forget_classes -> a folder timm loads unchanged."""

import json

import pytest
import torch

from zeroshot_unlearn import CheckpointError, InvalidRequestError, forget_classes, load_model
from zeroshot_unlearn.data.datasets import ImageTensorDataset

LABELS = [f"class{i}" for i in range(10)]


@pytest.fixture(scope="module")
def timm_folder(tmp_path_factory):
    """A small timm model saved by timm itself (save_for_hf, safetensors), with class names."""
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=10).eval()
    folder = tmp_path_factory.mktemp("zoo") / "test_resnet-mine"
    save_for_hf(model, str(folder), model_config={"label_names": LABELS}, safe_serialization=True,
                data_config={"input_size": (3, 32, 32)})
    return folder


def _retained(model, forget, n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([c for c in range(10) if c not in forget]).repeat(n // (10 - len(forget)) + 1)[:n]
    return ImageTensorDataset(torch.randn(n, *model.pretrained_cfg["input_size"], generator=g), labels)


FAST = {"generator.steps": 3, "impair.epochs": 0.2, "repair.epochs": 0.1, "min_epoch_images": 0,
        "self_check.enabled": False}


def test_timm_folder_round_trips_through_forget_classes(timm_folder, tmp_path):
    import timm

    model = load_model(f"local-dir:{timm_folder}")
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == "test_resnet" and tuple(cfg["input_size"]) == (3, 32, 32)
    assert cfg["label_names"] == LABELS and len(cfg["checkpoint_sha256"]) == 64
    assert load_model(str(timm_folder)).pretrained_cfg["checkpoint_sha256"] == cfg["checkpoint_sha256"]

    result = forget_classes(model, ["class3", "class7"], retain=_retained(model, [3, 7]), overrides=FAST,
                            progress=False)
    out = tmp_path / "unlearned"
    result.save(out, format="timm")
    assert {"config.json", "model.safetensors", "recipe.yaml"} <= {p.name for p in out.iterdir()}
    served = timm.create_model(f"local-dir:{out}", pretrained=True).eval()  # the serving side: timm alone
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(served(x), result.model(x))
    config = json.loads((out / "config.json").read_text())
    assert config["label_names"] == LABELS  # kept: serving code still maps ids to names
    ours = config["zeroshot_unlearn"]
    assert ours["forgotten_classes"] == [3, 7] and ours["forgotten_label_names"] == ["class3", "class7"]
    assert ours["history"][-1]["forget"] == [3, 7]
    # read back by this library: the history comes with it, so a second request keeps {3, 7} forgotten
    again = load_model(str(out))
    assert again.unlearning_history == result.history
    second = forget_classes(again, [1], retain=_retained(again, [1, 3, 7]), overrides=FAST, progress=False)
    assert second.forget == [1, 3, 7] and second.requested == [1]


def test_hf_hub_name_reads_the_local_cache_only(timm_folder, tmp_path, monkeypatch):
    import shutil

    snapshot = tmp_path / "hub" / "models--someone--test_resnet-mine" / "snapshots" / ("a" * 40)
    shutil.copytree(timm_folder, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = load_model("hf-hub:someone/test_resnet-mine")
    assert model.pretrained_cfg["label_names"] == LABELS
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*never downloads"):
        load_model("hf-hub:someone/not-cached")


def test_timm_format_errors_are_clear_and_early(timm_folder, tmp_path, digits_model, digits_retain):
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_model(f"local-dir:{tmp_path}")
    with pytest.raises(CheckpointError, match="holds a 'test_resnet', not 'resnet18'"):
        load_model("resnet18", timm_folder)
    result = forget_classes(digits_model, [3, 7], retain=digits_retain, overrides={**FAST, "min_epoch_images": 400},
                            progress=False)
    with pytest.raises(InvalidRequestError, match="the timm format needs a timm model; this one is 'digits_cnn'"):
        result.save(tmp_path / "out", format="timm")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidRequestError, match="unknown save format 'onnx'"):
        result.save(tmp_path / "out", format="onnx")


def test_audit_takes_the_original_as_forget_takes_it(timm_folder):
    """``audit --original local-dir:PATH`` (issue 47): the model names and folders ``forget --model`` takes, and an
    original of another architecture refused."""
    from conftest import state_equal
    from zeroshot_unlearn.cli.audit import load_original

    unlearned = load_model(f"local-dir:{timm_folder}")
    for source in (f"local-dir:{timm_folder}", str(timm_folder)):
        original = load_original(source, unlearned)
        assert state_equal(original, unlearned)
    with pytest.raises(CheckpointError, match="is a 'digits_cnn'.*audit a model against the one it was made from"):
        load_original("digits_cnn", unlearned)
