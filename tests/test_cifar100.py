"""The CIFAR-100 suite's data, requests and a small forgetting run on the shipped CIFAR-100 ResNet20.

Reads ``../shared/data/cifar100`` (skipped without it on a user's clone, failing under CI=true)."""

import json

import pytest
import torch

from zeroshot_unlearn import forget_classes, load_model
from zeroshot_unlearn.data import load_data, retained_subset
from zeroshot_unlearn.errors import InvalidRequestError
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.harness.bench import CIFAR100_REQUESTS, CIFAR100_SUPERCLASSES, SUITES, run_bench


@pytest.fixture(scope="module")
def cifar100(shared_data):
    folder = shared_data / "cifar100"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing from the benchmark data folder")
    model = load_model("cifar100_resnet20", pretrained=True)
    return folder, model, load_data(folder, model)


def test_suite_requests_are_the_protocol_ones(cifar100):
    folder, model, data = cifar100
    superclasses = json.loads((folder / "superclasses.json").read_text())
    names = model.pretrained_cfg["label_names"]
    for name, ids in CIFAR100_SUPERCLASSES.items():
        listed = superclasses[name] if isinstance(superclasses, dict) else None
        assert listed is not None, f"superclasses.json has no {name}"
        # the file may list the fine classes by id or by name
        assert sorted(ids) == sorted(c if isinstance(c, int) else names.index(c) for c in listed)
    assert names[69] == "rocket" and names[51] == "mushroom" and names[71] == "sea"
    assert SUITES["cifar100-resnet20"].requests == CIFAR100_REQUESTS
    assert [len(r) for r in CIFAR100_REQUESTS] == [1] * 5 + [5, 5, 10, 50, 90]
    assert len(data.train) == 50000 and len(data.test) == 10000 and len(data.classes) == 100


def test_forgetting_rocket_on_a_few_hundred_test_images(cifar100):
    _, model, data = cifar100
    before = {k: v.clone() for k, v in model.state_dict().items()}
    retain = retained_subset(data.train, [69], 990, seed=0)  # 10 images of each retained class
    rows = torch.cat([torch.nonzero(data.test.y == 69).flatten(),
                      torch.nonzero(data.test.y != 69).flatten()[:300]])
    test = data.test.subset(rows)
    # A shorter schedule than the recipe's (min_epoch_images 2,500) keeps this under a minute on 2 cores.
    result = forget_classes(model, [69], retain=retain, seed=0, progress=False, eval_data=test,
                            overrides={"min_epoch_images": 1000})
    df, dr = forget_retain_accuracy(result.model, test, [69])
    df0, dr0 = forget_retain_accuracy(model, test, [69])
    assert df0 > 60 and df <= 1.0, (df0, df)
    assert dr >= dr0 - 3.0, (dr0, dr)
    assert result.self_check.passed and result.self_check.test_images == 100
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_suite_refuses_a_missing_or_wrong_data_folder(tmp_path):
    with pytest.raises(InvalidRequestError, match="does not exist"):
        run_bench("cifar100-resnet20", data_dir=str(tmp_path / "nope"), progress=False)
    with pytest.raises(InvalidRequestError, match="needs --data-dir"):
        run_bench("cifar100-resnet20", progress=False)
