"""The training log amnesiac unlearning reads: recorded without changing training, bounded in memory,
exact, and applied only to the model it was recorded for."""

import copy
import dataclasses
import math

import pytest
import torch

from conftest import state_equal
from zeroshot_unlearn import CheckpointError, InvalidRequestError, forget_classes, load_model
from zeroshot_unlearn.evaluation import forget_retain_accuracy
from zeroshot_unlearn.harness.specs import get_train_spec
from zeroshot_unlearn.harness.training import train_classifier
from zeroshot_unlearn.training_log import TrainingLog, UpdateRecorder


def _short(epochs=0.5):
    spec = get_train_spec("digits_cnn")
    return spec, dataclasses.replace(spec.train, epochs=epochs)


def test_recording_changes_nothing_and_the_updates_add_up(digits, tmp_path):
    spec, cfg = _short()
    torch.manual_seed(0)
    plain = spec.build()
    logged = copy.deepcopy(plain)
    initial = copy.deepcopy(plain)
    train_classifier(plain, digits.train, cfg, seed=0, progress=False)
    with UpdateRecorder(logged, tmp_path / "log", shard_bytes=500_000) as recorder:
        train_classifier(logged, digits.train, cfg, seed=0, progress=False, recorder=recorder)
    assert state_equal(plain, logged)
    log = TrainingLog(tmp_path / "log")
    assert log.steps == math.ceil(0.5 * len(digits.train) / cfg.batch_size) == len(log.index["classes"])
    assert len(log.index["shards"]) > 1  # bounded shards: never the whole log at once
    assert all(set(held) <= set(range(10)) and held for held in log.index["classes"])
    # every step's update, summed, is the whole of training; undoing them all gives the initial state back
    log.check_matches(logged)
    log.subtract(logged, range(log.steps))
    for key, value in initial.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(logged.state_dict()[key], value, atol=1e-5, rtol=0)
    with pytest.raises(InvalidRequestError, match="recorded for another model or training run"):
        log.check_matches(logged)


def test_amnesiac_undoes_the_batches_that_held_a_forget_class(digits, digits_retain, digits_training_log,
                                                              digits_model):
    trained, folder = digits_training_log
    model = load_model(checkpoint=trained.path)
    before = copy.deepcopy(model)
    result = forget_classes(model, [3, 7], retain=digits_retain, method="amnesiac", training_log=folder,
                            overrides={"amnesiac.epochs": 0}, progress=False, strict=False)
    details = result.history[-1]["method_details"]
    # batches of 128 from a 10-class set: every one held a 3 or a 7, so all of training is undone
    assert details["undone_steps"] == details["logged_steps"] == TrainingLog(folder).steps
    assert details["undone_fraction"] == 1.0 and result.history[-1]["training_log"] == str(folder)
    assert state_equal(model, before) and result.retained_images == len(digits_retain)
    df, dr = forget_retain_accuracy(result.model, digits.test, [3, 7])
    assert df < 20 and dr < 50  # forgotten, and so is everything else: the measured limitation
    # a log is refused, before any work, for any model but the one it recorded
    with pytest.raises(InvalidRequestError, match="recorded for another model or training run"):
        forget_classes(digits_model, [3, 7], retain=digits_retain, method="amnesiac", training_log=folder)
    with pytest.raises(InvalidRequestError, match="needs the model's training log"):
        forget_classes(model, [3, 7], retain=digits_retain, method="amnesiac")
    with pytest.raises(InvalidRequestError, match="does not read a training log"):
        forget_classes(model, [3, 7], retain=digits_retain, training_log=folder)
    with pytest.raises(InvalidRequestError, match="is not a training log"):
        forget_classes(model, [3, 7], retain=digits_retain, method="amnesiac", training_log=trained.path.parent)
    card = trained.card["training_log"]
    assert card["bytes"] > 0 and card["mb_per_epoch"] == round(card["bytes"] / 1e6 / 2, 1)


def test_an_incomplete_log_is_refused(digits_training_log, tmp_path):
    import shutil

    _trained, folder = digits_training_log
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    next(broken.glob("shard-*.safetensors")).unlink()
    with pytest.raises(CheckpointError, match="incomplete: 1 shard"):
        TrainingLog(broken)
