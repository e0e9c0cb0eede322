"""Where two runs of the bit-identity guard part: stage-by-stage hashes of one ``anti_memory`` run.

The guard (``tests/test_bit_identity.py``) compares one hash of the output model. When it fails on a
machine or torch build where the code did not change, the question is which kernel rounds otherwise.
This script runs the guard's ``anti_memory`` request once per kernel setting, each in a child process
(the settings are read when torch loads), and hashes every stage: the generator's initial weights, its
first samples and their augmentation, the first logits of its fit, the fitted generator, the first
losses of impair and repair and the model after each phase. The first row where two columns differ is
the first computation that rounds otherwise.

    python -m research.bit_identity_trace                       # the settings below, side by side
    python -m research.bit_identity_trace --json trace.json     # also the raw hashes, to compare machines

Run it on two machines (or two builds) and compare the ``--json`` files row by row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = {
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "TRACE_MKLDNN": "0"},
    "portable, oneDNN AVX2": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "TRACE_MKLDNN": "0",
                              "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "old pins (oneDNN SSE4.1)": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                                 "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "old pins, oneDNN AVX2": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "MKL AVX2 branch": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX2", "TRACE_MKLDNN": "0"},
    "ATen AVX2 kernels": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "TRACE_MKLDNN": "0"},
}
"""Kernel settings compared: the guard's portable pins, and each pin loosened one at a time."""


def _digest(value) -> str:
    h = hashlib.sha256()
    tensors = [value[k] for k in sorted(value)] if isinstance(value, dict) else [value]
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def _trace() -> dict:
    """One traced run in this process (its kernels as the environment set them)."""
    import torch

    if os.environ.get("TRACE_MKLDNN") == "0":
        torch.backends.mkldnn.enabled = False
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_bit_identity as guard
    import zeroshot_unlearn.generators.base as generators_base
    import zeroshot_unlearn.methods.anti_memory.method as method_module
    import zeroshot_unlearn.methods.base as methods_base

    rows: list[tuple[str, str]] = []
    fit_generator, train_phase = method_module.fit_generator, methods_base.train_phase
    cross_entropy = generators_base.F.cross_entropy

    def traced_fit(generator, model, forget, cfg, augment, **kwargs):
        calls = [0]

        def traced_augment(x):
            y = augment(x)
            if calls[0] < 2:
                rows.extend([(f"generator sample {calls[0]}", _digest(x)), (f"augmented {calls[0]}", _digest(y))])
            return y

        def traced_ce(logits, labels, *args, **kw):
            if calls[0] < 3:
                rows.append((f"generator logits {calls[0]}", _digest(logits)))
            calls[0] += 1
            return cross_entropy(logits, labels, *args, **kw)

        rows.append(("generator init", _digest(generator.state_dict())))
        generators_base.F.cross_entropy = traced_ce
        try:
            fit_generator(generator, model, forget, cfg, traced_augment, **kwargs)
        finally:
            generators_base.F.cross_entropy = cross_entropy
        rows.append(("generator fitted", _digest(generator.state_dict())))

    def traced_train(model, cfg, steps, loss_fn, name, **kwargs):
        def loss(step):
            value = loss_fn(step)
            if step < 3:
                rows.append((f"{name} loss {step}", _digest(value)))
            return value
        out = train_phase(model, cfg, steps, loss, name=name, **kwargs)
        rows.append((f"{name} model", _digest(model.state_dict())))
        return out

    method_module.fit_generator, methods_base.train_phase = traced_fit, traced_train
    output = guard._hashes(["anti_memory"])["anti_memory"]
    return {"torch": torch.__version__, "cpu": guard.cpu_name(), "kernel_fingerprint": guard.kernel_fingerprint(),
            "rows": rows + [("output model", output[:12])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every setting's hashes to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_trace()))
        return
    traces = {}
    for name, env in SETTINGS.items():
        done = subprocess.run([sys.executable, "-m", "research.bit_identity_trace", "--child"], capture_output=True,
                              text=True, env={**os.environ, **env, "OMP_NUM_THREADS": "1"}, check=True)
        traces[name] = json.loads(done.stdout.strip().splitlines()[-1])
    first = next(iter(traces.values()))
    print(f"torch {first['torch']} on {first['cpu']}; one thread; each column one kernel setting\n")
    names = list(traces)
    print("| stage | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    print("| kernel fingerprint | " + " | ".join(traces[n]["kernel_fingerprint"][:12] for n in names) + " |")
    for i, (stage, _) in enumerate(first["rows"]):
        print(f"| {stage} | " + " | ".join(traces[n]["rows"][i][1] for n in names) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(traces, indent=1) + "\n")


if __name__ == "__main__":
    main()
