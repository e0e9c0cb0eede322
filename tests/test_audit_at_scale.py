"""The audit at ImageNet size (issue 47): features once per backbone, probe and k-NN at every stage, relearn by
two attackers, the never-learnt band and the head that never had the class. A tiny timm model at 64 px and
random images here (seconds); the real Lite0 with the subset and the flowers in benchmarks/imagenet-audit/."""

import copy

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from zeroshot_unlearn import forget_classes
from zeroshot_unlearn.audit.at_scale import (FeatureBank, Tail, audit_at_scale, backbone_digest, load_never_learnt,
                                             never_had_head)
from zeroshot_unlearn.data import ImageTensorDataset
from zeroshot_unlearn.surgery import classifier_head

SIZE = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = timm.create_model("test_efficientnet", num_classes=5).eval()
    m.pretrained_cfg = dict(m.pretrained_cfg, input_size=(3, SIZE, SIZE), num_classes=5)
    return m


def _split(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 5
    # each class its own mean colour, so a probe has something to read
    x = torch.randn(n, 3, SIZE, SIZE, generator=g) * 0.5 + (y.float()[:, None, None, None] - 2) * 0.4
    return ImageTensorDataset(x, y)


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("never-learnt")
    rng = np.random.default_rng(0)
    for k, name in enumerate(("aster", "bellflower")):
        for split, count in (("train", 10), ("test", 5)):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(60 + 120 * k, 30, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / split / name / f"{i}.png")
    return folder


def test_the_head_that_never_had_the_class_changes_only_its_rows(model):
    reference = never_had_head(model, [2], seed=0)
    before, after = classifier_head(model), classifier_head(reference)
    assert torch.equal(before.weight[[0, 1, 3, 4]], after.weight[[0, 1, 3, 4]])
    assert not torch.equal(before.weight[2], after.weight[2]) and not torch.equal(before.bias[2], after.bias[2])
    assert backbone_digest(reference) == backbone_digest(model)  # the same features: one pass serves both


def test_never_learnt_classes_take_ids_no_model_class_has(model, flowers):
    train, test, names = load_never_learnt(flowers, model)
    assert names == ["aster", "bellflower"] and sorted(set(train.y.tolist())) == [5, 6] and len(test) == 10


def test_a_model_whose_output_is_not_a_function_of_its_last_stage_gets_no_tail_attacker(model):
    """A skip connection around the last stage: the tail from its input cannot reproduce the output, so that
    attacker is skipped (None), not run on a different model."""
    from zeroshot_unlearn.audit.at_scale import relearn_tail

    class Skip(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.pretrained_cfg = inner.pretrained_cfg
            self.feature_info = [{"module": f"inner.{d['module']}"} for d in inner.feature_info]

        def forward(self, x):  # the image's brightness reaches the head around every stage
            return self.inner.forward_head(self.inner.forward_features(x) + x.mean((1, 2, 3))[:, None, None, None])

    wrapped = Skip(copy.deepcopy(model)).eval()
    x = _split(4, 1).x
    features = FeatureBank().get(wrapped, "probe", ImageTensorDataset(x, torch.full((4,), 2)), cut_classes=[2])
    assert relearn_tail(wrapped, features.cut, torch.full((4,), 2), features.cut, features.head_input, 2, 50.0,
                        0, runs=1, cap=2) is None


def test_the_tail_runs_the_model_from_its_last_stage(model):
    x = _split(4, 1).x
    bank = FeatureBank()
    features = bank.get(model, "probe", ImageTensorDataset(x, torch.tensor([2, 2, 2, 2])), cut_classes=[2])
    tail = Tail(copy.deepcopy(model), "blocks.4")  # the last of its stages
    with torch.no_grad():
        assert torch.allclose(tail(features.cut), model(x), atol=1e-4)
    names = {n for n, p in tail.model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("blocks.4", "conv_head", "bn2", "classifier")) for n in names)


@pytest.fixture(scope="module")
def report(model, flowers):
    train, test = _split(100, 0), _split(50, 1)
    retain = ImageTensorDataset(train.x[train.y != 2], train.y[train.y != 2])
    unlearned = forget_classes(model, [2], retain=retain, recipe="imagenet", seed=0, progress=False, strict=False,
                               overrides={"self_check.enabled": False, "min_epoch_images": 500}).model
    return audit_at_scale(model, {"unlearned": unlearned}, [2], train=train, test=test, never_learnt=flowers,
                          relearn_caps=(100, 10))


def test_the_audit_at_scale_reads_every_column_against_its_references(report):
    assert list(report.rows) == ["original", "unlearned", "head that never had the class"]
    # a head-only run and the reference share the original's backbone: two splits, one pass each (+ the band's two)
    assert report.meta["backbone_passes"] == 4
    assert set(report.meta["shared_backbone"]) == {"unlearned", "head that never had the class"}
    row = report.rows["unlearned"]
    assert row["df"]["value"] <= report.rows["original"]["df"]["value"]
    assert row["readable"] == report.rows["original"]["readable"]  # the same features, the same probes
    assert {"head input", "blocks.0", "blocks.4"} <= set(row["readable"])
    for key in ("relearn_head", "relearn_tail"):
        assert row[key]["value"] >= 0 and len(row[key]["runs"]) == 3
    band = report.band["summary"]
    assert set(report.band["classes"]) == {"aster", "bellflower"} and "relearn_head" in band
    starts = ("like a never-learnt class", "like the original and like a never-learnt class", "like the original",
              "between", "below the band")
    verdicts = report.verdicts["unlearned"]
    assert len(verdicts) == 2 + 2 * len(row["readable"]) and all(v["verdict"].startswith(starts) for v in verdicts)
    # the same backbone as the original: every probe and k-NN column reads like the original
    assert all(v["verdict"].startswith("like the original") for v in verdicts if "at " in v["column"])


def test_the_scaled_report_is_written_whole(report, tmp_path):
    out = report.save(tmp_path / "audit")
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "report.html"}
    text = (out / "report.md").read_text()
    assert "never-learnt band" in text and "relearn steps, last stage + head" in text
