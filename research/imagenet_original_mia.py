"""The original Lite0's MIA-forget AUC for each of the 20 subset classes (its 40 training images against its
50 validation images), the reference beside the unlearned models' per-class figures in docs/imagenet.md.

    python -m research.imagenet_original_mia ../shared/data benchmarks/imagenet-efficientnet_lite0/original-mia.json
"""

from __future__ import annotations

import sys

from zeroshot_unlearn.harness.bench import SUITES, mia_per_class
from zeroshot_unlearn.io import write_json


def main(data_dir: str, out: str) -> None:
    model, data = SUITES["imagenet-efficientnet_lite0"].load(data_dir)
    classes = sorted(set(data.test.y.tolist()))
    write_json(out, {"model": model.pretrained_cfg["architecture"], "seed": 0,
                     "mia_forget_auc_per_class_original": mia_per_class(model, data, classes, seed=0)})


if __name__ == "__main__":
    main(*sys.argv[1:3])
