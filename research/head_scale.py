"""Issue 30 item 6: the mechanics of a 1,000-class head at 224 px on the CPU.

Writes a timm ``resnet18`` with random weights (timm's ImageNet head: 1,000 classes, 224x224) as a
checkpoint, and a retained ImageFolder with one noise image for every class but 3, 7 and 11 (folders
named by class id), then prints the ``zeroshot-unlearn forget`` command that forgets those three classes
with ``--no-strict`` (random weights cannot pass a self-check). Run from the repository root:

    python -m research.head_scale /tmp/head-scale        # then the printed command
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zeroshot_unlearn import load_model
from zeroshot_unlearn.io import jsonable, save_state_dict
from zeroshot_unlearn.zoo.loading import METADATA_KEY

FORGET = (3, 7, 11)


def main(folder: Path) -> None:
    torch.manual_seed(0)
    model = load_model("resnet18")  # random weights: mechanics, not forgetting
    checkpoint = folder / "resnet18-random.safetensors"
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(checkpoint, model.state_dict(),
                    {METADATA_KEY: json.dumps({"pretrained_cfg": jsonable(model.pretrained_cfg)})})
    rng = np.random.default_rng(0)
    retained = folder / "retained"
    for class_id in range(1000):
        if class_id in FORGET:
            continue
        (retained / str(class_id)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(retained / str(class_id) / "0.png")
    print(f"zeroshot-unlearn forget --checkpoint {checkpoint} --classes {' '.join(map(str, FORGET))} "
          f"--retain-data {retained} --no-strict --set min_per_class=1 --out {folder / 'out'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/head-scale"))
