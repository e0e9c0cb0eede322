"""The same seed gives the same model, bit for bit, as the code recorded in ``tests/bit_identity.json``.

Refactors must not change what a run computes. Floating-point results are only defined to be
identical for the same torch version on kernels that round the same way, and two CPUs that both
report AVX512 need not (ATen, oneDNN and MKL pick their kernels per micro-architecture). So there
are two kinds of recorded set:

- **portable** (``"kernels": "portable"``): a few methods run in a child process whose kernels are
  pinned to code paths that do not depend on the CPU (:data:`PORTABLE_KERNELS`: ATen's baseline
  kernels, MKL's conditional numerical reproducibility, oneDNN switched off), one thread.
- **native**: every method with the machine's own kernels. The methods the portable set does not hold
  run where the native fingerprint matches and skip, saying why, elsewhere.

Both are identified by a *kernel fingerprint*: the hash of a fixed forward and backward through the
operations the methods use (convolution, BatchNorm, upsampling, interpolation, linear, softmax, an Adam
step) on one thread. Identity is promised only where the set's torch build (``2.14.1+cu130`` and
``2.14.1+cpu`` are two builds) and its fingerprint are this machine's: anywhere else the cases skip and
say why, because a different rounding there says nothing about the code.

Why oneDNN is off in the portable set: with it on, the *first* anti-memory the generator made already
differed between oneDNN's SSE4.1 and AVX2 code paths on one machine (its convolutions choose their
blocking per CPU), while with it off the whole run was the same bit for bit under both (``research/
bit_identity_trace.py`` hashes every stage; docs/benchmarks.md, "The bit-identity guard"). A 2026 set
recorded with oneDNN pinned to SSE4.1 on one CPU failed on an AMD EPYC with the code unchanged, from
that first sample on.

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
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
"""Environment read when torch loads: ATen's baseline (non-vectorised) kernels and MKL's CPU-independent code
path. The child also switches oneDNN off (``torch.backends.mkldnn.enabled = False``), so convolutions run
ATen's own im2col + MKL path instead of oneDNN's per-CPU blocking."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def kernel_fingerprint() -> str:
    """sha256 of a fixed forward and backward through the operations the methods use, on one thread:
    convolution, BatchNorm, nearest and bilinear upsampling, leaky ReLU, pooling, linear, softmax
    cross-entropy and one Adam step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(64, 3, 14, 14, generator=generator)
        conv = torch.randn(32, 3, 3, 3, generator=generator, requires_grad=True)
        conv2 = (torch.randn(16, 32, 3, 3, generator=generator) * 0.1).requires_grad_(True)
        head = torch.randn(10, 16, generator=generator, requires_grad=True)
        F = torch.nn.functional
        h = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), conv, padding=1)
        h = F.leaky_relu(F.batch_norm(h, None, None, training=True), 0.2)
        h = F.conv2d(F.interpolate(h, size=(20, 20), mode="bilinear", align_corners=False), conv2, padding=1)
        h = F.batch_norm(h, None, None, training=True).relu().mean((2, 3))
        loss = F.cross_entropy(h @ head.t(), torch.arange(64) % 10)
        loss.backward()
        optimizer = torch.optim.Adam([conv, conv2, head], lr=0.01)
        optimizer.step()
        digest = hashlib.sha256()
        for t in (loss.detach(), conv.detach(), conv2.detach(), head.detach()):
            digest.update(t.numpy().tobytes())
        return digest.hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def cpu_name() -> str:
    """The CPU's model name (recorded beside a set, so a reader sees where it was made)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _references() -> list[dict]:
    return json.loads(REFERENCE_FILE.read_text())["references"]


def _torch_version() -> str:
    return torch.__version__.split("+")[0]


def _recorded(kind: str) -> list[dict]:
    """The sets of ``kind`` recorded for this torch version (any build)."""
    return [r for r in _references() if r.get("kernels") == kind and r["torch"] == _torch_version()]


def _native_reference() -> dict | None:
    fingerprint = kernel_fingerprint()
    return next((r for r in _recorded("native") if r.get("torch_build") == torch.__version__
                 and r["kernel_fingerprint"] == fingerprint), None)


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


def _hashes(methods, stages: dict | None = None) -> dict[str, str]:
    """The output hash of each of ``methods``, run with this process's kernels; ``stages`` (given) receives
    each method's intermediate hashes (its fitted generator, where it has one), to say where two runs part."""
    import warnings

    from zeroshot_unlearn import load_model
    from zeroshot_unlearn.data import load_data, retained_subset
    from zeroshot_unlearn.io import sha256_state_dict

    model = load_model("digits_cnn", pretrained=True)
    digits = load_data("digits", model)
    retain = retained_subset(digits.train, [3, 7], 400, seed=0)
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    forget = digits.train.subset(rows)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in methods:
            result = _run(m, model, retain, forget)
            out[m] = sha256_state_dict(result.model.state_dict())
            if stages is not None and result.generator is not None:
                stages[m] = {"generator": sha256_state_dict(result.generator.state_dict())}
    return out


def _child(*args: str) -> dict:
    """``python tests/test_bit_identity.py ARGS`` with :data:`PORTABLE_KERNELS` (torch reads them when it loads,
    so this process cannot switch); its last line of output, as JSON."""
    env = {**os.environ, **PORTABLE_KERNELS}
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True,
                          timeout=900, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"the pinned-kernel child process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def portable_fingerprint() -> str:
    """The kernel fingerprint under the portable pins (a child process: seconds)."""
    return _child("--portable-fingerprint")["kernel_fingerprint"]


def portable_hashes(methods=PORTABLE_METHODS, perturb: bool = False) -> dict:
    """``methods`` run under the portable pins in a child process: the child's kernel fingerprint, the output
    hashes and the intermediate ones. ``perturb``: with the one-line change of :func:`_perturb` applied."""
    return _child("--portable-hashes", *(["--perturb"] if perturb else []), *methods)


def _pin_portable_kernels() -> None:
    torch.backends.mkldnn.enabled = False  # oneDNN picks its blocking per CPU (module docstring)


def _perturb() -> None:
    """A one-line change to the project's arithmetic: the masked distillation loss (the impair's and repair's
    retained objective and the anti-memory term) scaled by 1 + 2**-20. The guard must see it."""
    from zeroshot_unlearn.methods.anti_memory import terms

    original = terms.masked_distillation
    terms.masked_distillation = lambda *args: original(*args) * (1 + 2 ** -20)


@pytest.fixture(scope="module")
def forget_images(digits):
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    return digits.train.subset(rows)


def _describe(sets: list[dict]) -> str:
    return "; ".join(f"torch {r.get('torch_build', r['torch'])} fingerprint {r['kernel_fingerprint']} on "
                     f"{r.get('cpu', 'an unrecorded CPU')}" for r in sets) or "none"


@pytest.fixture(scope="module")
def portable_reference() -> dict:
    """The portable set this machine can be held to, or a skip that says why identity is not promised here."""
    recorded = _recorded("portable")
    if not recorded:
        if _in_ci():
            pytest.fail(f"CI=true: no portable bit-identity set is recorded for torch {_torch_version()}; "
                        "`python tests/test_bit_identity.py --record COMMIT` adds one")
        pytest.skip(f"no portable bit-identity set is recorded for torch {_torch_version()} (recorded: "
                    f"{_describe([r for r in _references() if r.get('kernels') == 'portable'])})")
    same_build = [r for r in recorded if r.get("torch_build") == torch.__version__]
    if not same_build:
        if _in_ci():  # CI installs the recorded build (constraints.txt): another one is CI's own mistake
            pytest.fail(f"CI=true: torch {torch.__version__} is not the build the portable set was recorded with "
                        f"({_describe(recorded)}); install with -c constraints.txt")
        pytest.skip(f"identity is not promised on this torch build ({torch.__version__}): the portable set was "
                    f"recorded with {_describe(recorded)}, and another build may compile the kernels otherwise. "
                    "`pip install -c constraints.txt` gives the recorded build; `--record COMMIT` adds this one")
    fingerprint = portable_fingerprint()
    match = next((r for r in same_build if r["kernel_fingerprint"] == fingerprint), None)
    if match is None:
        pytest.skip(f"identity is not promised on this CPU ({cpu_name()}): the pinned kernels give fingerprint "
                    f"{fingerprint} here and {_describe(same_build)} where the set was recorded, so they round "
                    "differently and the method hashes could not be compared. `--record COMMIT` adds this machine")
    return match


@pytest.fixture(scope="module")
def portable_run(portable_reference):
    return portable_reference, portable_hashes()


@pytest.mark.parametrize("method", PORTABLE_METHODS)
def test_portable_output_is_bit_identical_to_the_recorded_one(method, portable_run):
    reference, measured = portable_run
    assert measured["kernel_fingerprint"] == reference["kernel_fingerprint"]
    stages = reference.get("stages", {}).get(method, {})
    parted = [name for name, digest in stages.items() if measured["stages"].get(method, {}).get(name) != digest]
    where = f" (already at: {', '.join(parted)})" if parted else ""
    assert measured["runs"][method] == reference["runs"][method], \
        f"{method} computes other weights (pinned kernels) than the code of commit {reference['commit']} did{where}"


def test_the_guard_sees_a_one_line_change_to_the_arithmetic(portable_reference):
    """Known answer: the masked distillation loss scaled by 1 + 2**-20 (:func:`_perturb`) must change the
    recorded hash of ``anti_memory``; a guard that passed it would not be guarding the arithmetic."""
    measured = portable_hashes(("anti_memory",), perturb=True)
    assert measured["runs"]["anti_memory"] != portable_reference["runs"]["anti_memory"]


@pytest.mark.slow  # about two minutes where it runs; the portable set guards CI (`pytest -m slow` runs these)
@pytest.mark.parametrize("method", [m for m in METHODS if m not in PORTABLE_METHODS])
def test_output_is_bit_identical_to_the_recorded_one(method, digits_model, digits_retain, forget_images):
    from zeroshot_unlearn.io import sha256_state_dict

    reference = _native_reference()
    if reference is None:
        pytest.skip(f"no native set was recorded on kernels that round like this machine's (torch "
                    f"{torch.__version__}, fingerprint {kernel_fingerprint()} on {cpu_name()}; recorded: "
                    f"{_describe(_recorded('native'))}); the portable set guards the refactor where it runs. "
                    "`python tests/test_bit_identity.py --record COMMIT` adds one")
    result = _run(method, digits_model, digits_retain, forget_images)
    assert sha256_state_dict(result.model.state_dict()) == reference["runs"][method], \
        f"{method} computes other weights than the code of commit {reference['commit']} did on this machine"


def _record(commit: str) -> None:
    data = json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.is_file() else {"settings": SETTINGS,
                                                                                    "references": []}
    stages: dict = {}
    native = {"commit": commit, "kernels": "native", "torch": _torch_version(), "torch_build": torch.__version__,
              "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "kernel_fingerprint": kernel_fingerprint(), "runs": _hashes(METHODS, stages), "stages": stages}
    measured = portable_hashes()
    portable = {"commit": commit, "kernels": "portable", "torch": _torch_version(), "torch_build": torch.__version__,
                "cpu": cpu_name(), "environment": PORTABLE_KERNELS, "mkldnn": False,
                "kernel_fingerprint": measured["kernel_fingerprint"], "runs": measured["runs"],
                "stages": measured["stages"]}
    # A new set replaces those of its kind for this build (sets from before builds were recorded included),
    # natives only where their fingerprint is this machine's.
    def replaced(r: dict) -> bool:
        if r["torch"] != native["torch"] or r.get("torch_build", torch.__version__) != torch.__version__:
            return False
        return r.get("kernels") == "portable" or r["kernel_fingerprint"] == native["kernel_fingerprint"]

    kept = [r for r in data["references"] if not replaced(r)]
    data["references"] = kept + [native, portable]
    REFERENCE_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps([native, portable], indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--portable-fingerprint"]:
        _pin_portable_kernels()
        print(json.dumps({"kernel_fingerprint": kernel_fingerprint()}))
    elif sys.argv[1:2] == ["--portable-hashes"]:
        _pin_portable_kernels()
        args = sys.argv[2:]
        if args[:1] == ["--perturb"]:
            _perturb()
            args = args[1:]
        found: dict = {}
        runs = _hashes(tuple(args) or PORTABLE_METHODS, found)
        print(json.dumps({"kernel_fingerprint": kernel_fingerprint(), "runs": runs, "stages": found}))
    elif len(sys.argv) == 3 and sys.argv[1] == "--record":
        _record(sys.argv[2])
    else:
        sys.exit("usage: python tests/test_bit_identity.py --record COMMIT")
