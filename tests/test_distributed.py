"""Data-parallel forgetting under torchrun: 2 CPU processes (gloo) against 1, same request and seed."""

import json
import os
import subprocess
import sys

import torch

from zeroshot_unlearn import load_model
from zeroshot_unlearn.data import load_data
from zeroshot_unlearn.evaluation import forget_retain_accuracy, predict

REQUEST = ["forget", "--model", "digits_cnn", "--classes", "3", "7", "--retain-data", "digits",
           "--retain-budget", "400", "--device", "cpu", "--quiet"]


def _run(args, nproc: int, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "zeroshot_unlearn"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                    "-m", "zeroshot_unlearn"]
    done = subprocess.run(launcher + args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_two_gloo_processes_match_one_and_write_one_output_set(tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    _run(REQUEST + ["--out", str(one)], 1, tmp_path)
    stdout = _run(REQUEST + ["--out", str(two)], 2, tmp_path)

    # Rank 0 alone reports and writes: one line per message, one folder, no leftovers beside it.
    assert stdout.count("wrote ") == 1 and "(2 processes)" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    row = json.loads((two / "metrics.json").read_text())["rows"][0]
    assert row["world_size"] == 2 and row["device"] == "cpu"
    # every impair and repair step was averaged by DistributedDataParallel's reducer
    assert row["gradient_sync"]["ddp_reducer"] > 0 and row["gradient_sync"]["all_reduce"] == 0

    data = load_data("digits", load_model("digits_cnn", pretrained=True))
    single, parallel = load_model(checkpoint=one / "model.safetensors"), load_model(checkpoint=two / "model.safetensors")
    df1, dr1 = forget_retain_accuracy(single, data.test, [3, 7])
    df2, dr2 = forget_retain_accuracy(parallel, data.test, [3, 7])
    # The tolerance of the README's scaling note: both forget (Df <= 1), Dr within 1 point, and the two
    # models agree on >= 97% of test predictions. They are not bit-identical: each rank normalises its
    # half batch with its own BatchNorm statistics and draws its own augmentations and anti-memories.
    assert df1 <= 1.0 and df2 <= 1.0
    assert abs(dr1 - dr2) <= 1.0, (dr1, dr2)
    agreement = float((predict(single, data.test.x) == predict(parallel, data.test.x)).float().mean())
    assert agreement >= 0.97, agreement
    assert not torch.equal(single.fc.weight, parallel.fc.weight)  # really two different runs


def test_every_rank_refuses_bad_input_before_any_work(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "zeroshot_unlearn", "forget", "--model", "digits_cnn", "--classes", "3", "12",
           "--retain-data", "digits", "--device", "cpu", "--out", str(tmp_path / "out"), "--quiet"]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert done.stderr.count("class [12] is out of range: the model's head has 10 classes") == 2  # both ranks
    assert not (tmp_path / "out").exists()


def test_shards_of_every_rank_make_up_the_one_process_batch():
    from zeroshot_unlearn.engine import BatchStream
    from zeroshot_unlearn.runtime import Runtime

    x, y = torch.arange(40.0).view(10, 1, 2, 2), torch.arange(10)
    single = BatchStream(x, y, 4, seed=3)
    ranks = [BatchStream(x, y, 4, seed=3, runtime=Runtime(rank=r, world_size=2)) for r in range(2)]
    for _ in range(6):  # across reshuffles too
        _, whole = next(single)
        parts = [next(stream)[1] for stream in ranks]
        assert [len(p) for p in parts] == [2, 2]
        assert sorted(torch.cat(parts).tolist()) == sorted(whole.tolist())
    assert ranks[0].steps_for(1.0) == single.steps_for(1.0)  # every rank runs the same number of steps
    assert Runtime(rank=1, world_size=2).share(32) == 16 and Runtime().share(32) == 32


def test_ranks_given_different_requests_are_refused_before_any_work():
    """The fingerprint every rank compares: the same request gives the same one, any difference another, and
    a disagreement between ranks is an InvalidRequestError."""
    import pytest

    from zeroshot_unlearn.plan import _check_same_request_on_every_rank
    from zeroshot_unlearn.data.datasets import ImageTensorDataset
    from zeroshot_unlearn.errors import InvalidRequestError
    from zeroshot_unlearn.runtime import Runtime

    class Recording(Runtime):
        seen: list = []

        def same_on_every_rank(self, values, tolerance=0.0):
            self.seen.append(values.clone())
            return len(self.seen) < 2 or torch.equal(self.seen[0], self.seen[-1])

    runtime = Recording(rank=1, world_size=2)
    retain = ImageTensorDataset(torch.zeros(8, 1, 4, 4), torch.arange(8) % 2)
    _check_same_request_on_every_rank(runtime, [3, 7], 0, retain, "anti_memory")
    _check_same_request_on_every_rank(runtime, [3, 7], 0, retain, "anti_memory")  # the same: accepted
    for changed in (([3], 0, retain, "anti_memory"), ([3, 7], 1, retain, "anti_memory"),
                    ([3, 7], 0, ImageTensorDataset(torch.ones(8, 1, 4, 4), torch.arange(8) % 2), "anti_memory"),
                    ([3, 7], 0, retain, "masked_kd")):
        with pytest.raises(InvalidRequestError, match="rank 1: the ranks of this torchrun job were given different"):
            _check_same_request_on_every_rank(runtime, *changed)
        runtime.seen.pop()
