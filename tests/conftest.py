import copy
import os
from pathlib import Path

import pytest
import torch

from zeroshot_unlearn import load_model
from zeroshot_unlearn.data import load_data, retained_subset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZEROSHOT_UNLEARN_SHARED", REPO.parent / "shared")) / "data"

# A fast version of the digits recipe for tests that check behaviour, not final quality. It is too
# short to forget reliably, so the self-check (which would say so) is off here; tests/test_selfcheck.py
# covers the check itself.
FAST = {"generator.steps": 5, "impair.epochs": 0.5, "repair.epochs": 0.25, "self_check.enabled": False}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # One cache per test session: retrain references are computed once, never in the user's cache.
    monkeypatch.setenv("ZEROSHOT_UNLEARN_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits_model():
    return load_model("digits_cnn", pretrained=True)


@pytest.fixture(autouse=True)
def _shared_model_is_never_modified(request):
    """Tests share one digits model: any test that changes its weights, buffers or mode fails."""
    if "digits_model" not in request.fixturenames:
        yield
        return
    model = request.getfixturevalue("digits_model")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    yield
    assert [m.training for m in model.modules()] == modes, "a test left the shared digits model in another mode"
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), "a test modified the shared model"


@pytest.fixture(scope="session")
def digits(digits_model):
    return load_data("digits", digits_model)


@pytest.fixture(scope="session")
def digits_retain(digits):
    return retained_subset(digits.train, [3, 7], 400, seed=0)


@pytest.fixture
def model_copy(digits_model):
    return copy.deepcopy(digits_model)


@pytest.fixture(scope="session")
def shared_data():
    """The benchmark data folder; missing, its tests skip (a user's clone) or fail (CI=true, where it must exist)."""
    if not SHARED_DATA.is_dir():
        reason = (f"needs the benchmark data folder {SHARED_DATA} (CIFAR-10 npz files and the public ResNet "
                  "checkpoints): build it with `zeroshot-unlearn fetch-data --out ../shared/data` (downloads; needs "
                  "the network) or point ZEROSHOT_UNLEARN_SHARED at a folder holding data/")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return SHARED_DATA


def state_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="session")
def digits_training_log(tmp_path_factory, digits):
    """A digits CNN trained for 2 epochs with its training log (amnesiac unlearning's input)."""
    import dataclasses

    from zeroshot_unlearn.harness.specs import get_train_spec
    from zeroshot_unlearn.harness.training import train_checkpoint
    from zeroshot_unlearn.training_log import log_folder

    spec = get_train_spec("digits_cnn")
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=2))
    trained = train_checkpoint(spec, digits, cache=tmp_path_factory.mktemp("logged"), record_updates=True,
                               progress=False)
    return trained, log_folder(trained.path)
