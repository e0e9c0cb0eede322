import shutil

import pytest
import torch

from zeroshot_unlearn import CheckpointError, InvalidRequestError, load_model
from zeroshot_unlearn.data import load_data
from zeroshot_unlearn.evaluation import accuracy as metric_accuracy
from zeroshot_unlearn.zoo import list_models

RESNET20 = "resnet20-12fca82f.th"


def test_public_resnet20_reproduces_its_accuracy(shared_data):
    """The zoo loader (weights_only, module. prefix, option-A shortcut, normalisation) gives 91.73% +- 0.2."""
    model = load_model("cifar10_resnet20", shared_data / "checkpoints" / RESNET20)
    data = load_data(shared_data, model)
    accuracy = metric_accuracy(model, data.test)
    assert abs(accuracy - 91.73) <= 0.2, accuracy
    assert model.pretrained_cfg["mean"] == (0.485, 0.456, 0.406)
    assert not model.training


@pytest.mark.parametrize("name", ["cifar10_resnet32", "cifar10_resnet44"])
def test_other_public_resnets_load(shared_data, name):
    """The registered sha256 is what loaded, and the weights are trained: the published ~92.6-93.1% on
    300 test images (random weights: ~10%)."""
    from zeroshot_unlearn.data import load_data
    from zeroshot_unlearn.evaluation import accuracy
    from zeroshot_unlearn.zoo.registry import checkpoint_registry

    depth = name[-2:]
    files = list((shared_data / "checkpoints").glob(f"resnet{depth}-*.th"))
    model = load_model(name, files[0])
    assert model.pretrained_cfg["checkpoint_sha256"] == checkpoint_registry()[files[0].name].sha256
    test = load_data(shared_data, model).test
    assert accuracy(model, test.subset(range(300))) >= 85


def test_checksum_mismatch_is_an_error(shared_data, tmp_path):
    copy = tmp_path / RESNET20
    shutil.copy(shared_data / "checkpoints" / RESNET20, copy)
    with open(copy, "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"0123456789")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_model("cifar10_resnet20", copy)


def test_truncated_and_missing_files(tmp_path):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_model("digits_cnn", bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_model("digits_cnn", tmp_path / "absent.pth")
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model("digits_cnn", broken)


class _Payload:
    def __reduce__(self):
        return (print, ("this would run at load time",))


def test_unsafe_pickle_is_refused_unless_trusted(tmp_path):
    state = load_model("digits_cnn").state_dict()
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": state, "extra": _Payload()}, path)
    with pytest.raises(CheckpointError, match="trust_checkpoint=True"):
        load_model("digits_cnn", path)
    model = load_model("digits_cnn", path, trust_checkpoint=True)
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_key_mismatch_names_the_keys(tmp_path):
    state = load_model("digits_cnn").state_dict()
    state["fc.extra"] = torch.zeros(1)
    del state["fc.bias"]
    path = tmp_path / "mismatch.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing \(first: fc.bias\).*unexpected \(first: fc.extra\)"):
        load_model("digits_cnn", path)


def test_unknown_model_suggests_names():
    with pytest.raises(InvalidRequestError, match="cifar10_resnet20"):
        load_model("cifar10_resnet21")
    assert {"cifar10_resnet20", "cifar10_resnet56", "digits_cnn"} <= set(list_models())


def test_timm_model_with_local_checkpoint(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet10t", num_classes=4)
    path = tmp_path / "r10t.safetensors"
    save_file(source.state_dict(), str(path))
    model = load_model("resnet10t", path, num_classes=4)
    assert model.pretrained_cfg["architecture"] == "resnet10t" and model.pretrained_cfg["num_classes"] == 4
    assert torch.equal(model.fc.weight, source.fc.weight)
