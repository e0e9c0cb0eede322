"""The same seed gives the same model, bit for bit, as the code recorded in ``tests/bit_identity.json``.

Refactors must not change what a run computes. Floating-point results are only defined to be
identical for the same torch version on kernels that round the same way, and two CPUs that both
report AVX512 need not (ATen, oneDNN and MKL pick their kernels per micro-architecture). So there
are two kinds of recorded set:

- **portable** (``"kernels": "portable"``): a few methods run in a child process whose kernels are
  pinned to code paths every x86-64 CPU runs the same way (:data:`PORTABLE_KERNELS`: ATen's baseline
  kernels, oneDNN limited to SSE4.1, MKL's conditional numerical reproducibility), one thread. It
  runs everywhere the recorded torch version runs, CI included, so the guard never skips there.
- **native**: every method with the machine's own kernels, identified by a *kernel fingerprint* (the
  hash of a fixed convolution/BatchNorm/linear forward and backward on one thread). The methods the
  portable set does not hold run where the fingerprint matches and skip, saying why, elsewhere.

``python tests/test_bit_identity.py --record COMMIT`` adds both sets for this machine (run it with the
code of ``COMMIT`` checked out, e.g. in a ``git worktree``, so that the sets record that code).
"""

import hashlib
import json
import os
import subprocess
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
PORTABLE_METHODS = ("anti_memory", "anti_memory_data_free", "masked_kd")
"""The methods of the portable set: the project's method in both modes and the plain baseline (the
pinned kernels are about 2.5 times slower, and CI runs them on every push)."""
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}
"""Environment read when torch loads: the same kernels, and so the same rounding, on every x86-64 CPU."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


def _torch_version() -> str:
    return torch.__version__.split("+")[0]


def _native_reference() -> dict | None:
    fingerprint = kernel_fingerprint()
    return next((r for r in _references() if r.get("kernels") == "native" and r["torch"] == _torch_version()
                 and r["kernel_fingerprint"] == fingerprint), None)


def _portable_reference() -> dict | None:
    return next((r for r in _references() if r.get("kernels") == "portable" and r["torch"] == _torch_version()),
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


def _hashes(methods) -> dict[str, str]:
    """The output hash of each of ``methods``, run with this process's kernels."""
    import warnings

    from zeroshot_unlearn import load_model
    from zeroshot_unlearn.data import load_data, retained_subset
    from zeroshot_unlearn.io import sha256_state_dict

    model = load_model("digits_cnn", pretrained=True)
    digits = load_data("digits", model)
    retain = retained_subset(digits.train, [3, 7], 400, seed=0)
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    forget = digits.train.subset(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {m: sha256_state_dict(_run(m, model, retain, forget).model.state_dict()) for m in methods}


def portable_hashes() -> dict:
    """The portable set's methods run in a child process with :data:`PORTABLE_KERNELS` (torch reads them
    when it loads, so this process cannot switch), with the child's kernel fingerprint."""
    env = {**os.environ, **PORTABLE_KERNELS}
    done = subprocess.run([sys.executable, __file__, "--portable-hashes"], env=env, capture_output=True, text=True,
                          timeout=900, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"the pinned-kernel child process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def forget_images(digits):
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    return digits.train.subset(rows)


@pytest.fixture(scope="module")
def portable_run():
    reference = _portable_reference()
    if reference is None:
        if _in_ci():
            pytest.fail(f"CI=true: no portable bit-identity set is recorded for torch {_torch_version()}; "
                        "`python tests/test_bit_identity.py --record COMMIT` adds one")
        pytest.skip(f"no portable set recorded for torch {_torch_version()}")
    return reference, portable_hashes()


def test_the_portable_kernels_reproduce_the_recorded_fingerprint(portable_run):
    """The pinned kernels round as they did where the set was recorded: if this fails, the pinning no
    longer makes this CPU compute like that one (and the hashes below could not be compared)."""
    reference, measured = portable_run
    assert measured["kernel_fingerprint"] == reference["kernel_fingerprint"], (
        f"pinned kernels ({PORTABLE_KERNELS}) give fingerprint {measured['kernel_fingerprint']} on this machine, "
        f"{reference['kernel_fingerprint']} where the set was recorded")


@pytest.mark.parametrize("method", PORTABLE_METHODS)
def test_portable_output_is_bit_identical_to_the_recorded_one(method, portable_run):
    reference, measured = portable_run
    assert measured["runs"][method] == reference["runs"][method], \
        f"{method} computes other weights (pinned kernels) than the code of commit {reference['commit']} did"


@pytest.mark.parametrize("method", [m for m in METHODS if m not in PORTABLE_METHODS])
def test_output_is_bit_identical_to_the_recorded_one(method, digits_model, digits_retain, forget_images):
    from zeroshot_unlearn.io import sha256_state_dict

    reference = _native_reference()
    if reference is None:
        recorded = ", ".join(f"torch {r['torch']} fingerprint {r['kernel_fingerprint']}" for r in _references()
                             if r.get("kernels") == "native")
        pytest.skip(f"no native set was recorded on kernels that round like this machine's (torch "
                    f"{torch.__version__}, fingerprint {kernel_fingerprint()}; recorded: {recorded}); the portable "
                    "set above still guards the refactor. `python tests/test_bit_identity.py --record COMMIT` adds one")
    result = _run(method, digits_model, digits_retain, forget_images)
    assert sha256_state_dict(result.model.state_dict()) == reference["runs"][method], \
        f"{method} computes other weights than the code of commit {reference['commit']} did on this machine"


def _record(commit: str) -> None:
    data = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {"settings": SETTINGS,
                                                                                    "references": []}
    native = {"commit": commit, "kernels": "native", "torch": _torch_version(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "kernel_fingerprint": kernel_fingerprint(),
              "runs": _hashes(METHODS)}
    measured = portable_hashes()
    portable = {"commit": commit, "kernels": "portable", "torch": _torch_version(), "environment": PORTABLE_KERNELS,
                "kernel_fingerprint": measured["kernel_fingerprint"], "runs": measured["runs"]}
    kept = [r for r in data["references"] if not (r["torch"] == native["torch"] and (
        r.get("kernels") == "portable" or r["kernel_fingerprint"] == native["kernel_fingerprint"]))]
    data["references"] = kept + [native, portable]
    REFERENCE_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps([native, portable], indent=1))


if __name__ == "__main__":
    if sys.argv[1:] == ["--portable-hashes"]:
        print(json.dumps({"kernel_fingerprint": kernel_fingerprint(), "runs": _hashes(PORTABLE_METHODS)}))
    elif len(sys.argv) == 3 and sys.argv[1] == "--record":
        _record(sys.argv[2])
    else:
        sys.exit("usage: python tests/test_bit_identity.py --record COMMIT")
