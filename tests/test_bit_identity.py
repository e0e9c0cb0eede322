"""The same seed gives the same model, bit for bit, as the code recorded in ``tests/bit_identity.json``.

Refactors must not change what a run computes. The reference hashes were written by an earlier
commit (named in the file) on this project's CPU; floating-point results are only defined to be
identical for the same torch version and the same CPU instruction set, so on another one the test
skips and says why.
"""

import json
from pathlib import Path

import pytest
import torch

from zeroshot_unlearn import forget_classes
from zeroshot_unlearn.io import sha256_state_dict

REFERENCE = json.loads((Path(__file__).with_name("bit_identity.json")).read_text())


@pytest.fixture(scope="module")
def forget_images(digits):
    rows = torch.nonzero(torch.isin(digits.train.y, torch.tensor([3, 7]))).flatten()[:200]
    return digits.train.subset(rows)


@pytest.mark.parametrize("method", sorted(REFERENCE["runs"]))
def test_output_is_bit_identical_to_the_recorded_one(method, digits_model, digits_retain, forget_images):
    capability = torch.backends.cpu.get_cpu_capability()
    if torch.__version__.split("+")[0] != REFERENCE["torch"] or capability != REFERENCE["cpu_capability"]:
        pytest.skip(f"the references were recorded with torch {REFERENCE['torch']} on {REFERENCE['cpu_capability']}; "
                    f"this is torch {torch.__version__} on {capability}, where bit identity is not defined")
    run = REFERENCE["runs"][method]
    kwargs = {}
    if method in ("gradient_ascent", "scrub", "ssd"):
        kwargs["forget_data"] = forget_images
    data_free = method in ("anti_memory_data_free", "gkt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the references ran on one thread; reductions split over threads round differently
    try:
        result = forget_classes(digits_model, [3, 7], retain=None if data_free else digits_retain, method=method,
                                overrides=run.get("overrides"), seed=0, progress=False, strict=False, **kwargs)
    finally:
        torch.set_num_threads(threads)
    assert sha256_state_dict(result.model.state_dict()) == run["sha256"]
