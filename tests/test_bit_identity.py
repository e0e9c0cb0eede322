"""The same seed gives the same model, bit for bit, as the code recorded in ``tests/bit_identity.json``.

Refactors must not change what a run computes. Floating-point results are only defined to be
identical for the same torch version on a CPU whose kernels round the same way, and two CPUs that
both report AVX512 need not (the oneDNN kernels are picked per micro-architecture). So each set of
reference hashes carries a *kernel fingerprint*: the hash of a fixed convolution/BatchNorm/linear
forward and backward on one thread. The test compares against the set whose fingerprint this
machine reproduces, and skips, saying why, where none does.

``python tests/test_bit_identity.py --record COMMIT`` adds the set of this machine (run it with the
code of ``COMMIT`` checked out, e.g. in a ``git worktree``, so that the set records that code).
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

REFERENCE_FILE = Path(__file__).with_name("bit_identity.json")
SETTINGS = ("sha256 of the output state dict of forget_classes on the shipped digits_cnn, classes [3, 7], 400 "
            "retained images (retained_subset seed 0), forget_data = the first 200 training images of classes 3 "
            "and 7 for the baselines that read them, seed 0, one CPU thread")
OVERRIDES = {"anti_memory_data_free": {"generator.steps": 10, "data_free.memories_per_epoch": 256}}
METHODS = ("anti_memory", "masked_kd", "gradient_ascent", "unsir", "anti_memory_data_free", "scrub", "ssd", "gkt")


def kernel_fingerprint() -> str:
    """sha256 of a fixed conv -> BatchNorm -> ReLU -> linear forward and backward on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, 28, 28, generator=generator)
        conv = torch.randn(32, 3, 3, 3, generator=generator, requires_grad=True)
        head = torch.randn(10, 32, generator=generator, requires_grad=True)
        h = torch.nn.functional.conv2d(x, conv, padding=1)
        h = torch.nn.functional.batch_norm(h, None, None, training=True).relu().mean((2, 3))
        loss = torch.nn.functional.cross_entropy(h @ head.t(), torch.arange(64) % 10)
        loss.backward()
        digest = hashlib.sha256()
        for t in (loss.detach(), conv.grad, head.grad):
            digest.update(t.numpy().tobytes())
        return digest.hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def _references() -> list[dict]:
    return json.loads(REFERENCE_FILE.read_text())["references"]


def _matching_reference() -> dict | None:
    torch_version, fingerprint = torch.__version__.split("+")[0], kernel_fingerprint()
    return next((r for r in _references() if r["torch"] == torch_version and r["kernel_fingerprint"] == fingerprint),
                None)


def _run(method: str, digits_model, digits_retain, forget_images):
    from zeroshot_unlearn import forget_classes

    kwargs = {}
    if method in ("gradient_ascent", "scrub", "ssd"):
        kwargs["forget_data"] = forget_images
    data_free = method in ("anti_memory_data_free", "gkt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the references ran on one thread; reductions split over threads round differently
    try:
        return forget_classes(digits_model, [3, 7], retain=None if data_free else digits_retain, method=method,
                              overrides=OVERRIDES.get(method), seed=0, progress=False, strict=False, **kwargs)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def forget_images(digits):
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    return digits.train.subset(rows)


def test_the_fingerprint_is_stable_within_a_process():
    assert kernel_fingerprint() == kernel_fingerprint()


@pytest.mark.parametrize("method", METHODS)
def test_output_is_bit_identical_to_the_recorded_one(method, digits_model, digits_retain, forget_images):
    from zeroshot_unlearn.io import sha256_state_dict

    reference = _matching_reference()
    if reference is None:
        recorded = ", ".join(f"torch {r['torch']} fingerprint {r['kernel_fingerprint']}" for r in _references())
        pytest.skip(f"no reference set was recorded on kernels that round like this machine's (torch "
                    f"{torch.__version__}, fingerprint {kernel_fingerprint()}; recorded: {recorded}), where bit "
                    "identity is not defined; `python tests/test_bit_identity.py --record COMMIT` adds one")
    result = _run(method, digits_model, digits_retain, forget_images)
    assert sha256_state_dict(result.model.state_dict()) == reference["runs"][method], \
        f"{method} computes other weights than the code of commit {reference['commit']} did on this machine"


def _record(commit: str) -> None:
    from zeroshot_unlearn import load_model
    from zeroshot_unlearn.data import load_data, retained_subset
    from zeroshot_unlearn.io import sha256_state_dict

    model = load_model("digits_cnn", pretrained=True)
    digits = load_data("digits", model)
    retain = retained_subset(digits.train, [3, 7], 400, seed=0)
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    forget = digits.train.subset(rows)
    runs = {m: sha256_state_dict(_run(m, model, retain, forget).model.state_dict()) for m in METHODS}
    data = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {"settings": SETTINGS,
                                                                                    "references": []}
    entry = {"commit": commit, "torch": torch.__version__.split("+")[0],
             "cpu_capability": torch.backends.cpu.get_cpu_capability(), "kernel_fingerprint": kernel_fingerprint(),
             "runs": runs}
    data["references"] = [r for r in data["references"] if r["kernel_fingerprint"] != entry["kernel_fingerprint"]
                          or r["torch"] != entry["torch"]] + [entry]
    REFERENCE_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--record":
        sys.exit("usage: python tests/test_bit_identity.py --record COMMIT")
    _record(sys.argv[2])
