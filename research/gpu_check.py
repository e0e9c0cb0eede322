"""forget_classes(device="cuda") on the CIFAR-100 ResNet20: rocket, vehicles_2 and 10 classes at 2,500 and 5,000
retained images, timed per phase, Df/Dr beside the original's. Needs a CUDA device.

    python -m research.gpu_check DATA_DIR/cifar100 OUT.json
"""
import json
import sys
import time
import traceback

import torch
from zeroshot_unlearn import forget_classes, load_model
from zeroshot_unlearn.data import load_data, retained_subset
from zeroshot_unlearn.evaluation import forget_retain_accuracy

out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
try:
    model = load_model("cifar100_resnet20", pretrained=True)
    data = load_data(sys.argv[1], model)
    for budget in (2500, 5000):
        for classes in ([69], [0, 51, 54, 62, 70], list(range(10))):
            retain = retained_subset(data.train, classes, budget, seed=0)
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            result = forget_classes(model, classes, retain=retain, device="cuda", seed=0, progress=False, strict=False)
            wall = time.perf_counter() - start
            df, dr = forget_retain_accuracy(result.model.cpu(), data.test, classes)
            df0, dr0 = forget_retain_accuracy(model, data.test, classes)
            row = {"classes": classes, "budget": budget, "wall_s": round(wall, 2),
                   "timings": {k: round(v, 2) for k, v in result.timings.items()},
                   "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20),
                   "test_images": len(data.test), "df": round(df, 2), "dr": round(dr, 2),
                   "original_df": round(df0, 2), "original_dr": round(dr0, 2),
                   "self_check": None if result.self_check is None else result.self_check.passed}
            print(json.dumps(row), flush=True)
            out.setdefault("cifar100_resnet20", []).append(row)
except Exception:
    traceback.print_exc()
json.dump(out, open(sys.argv[2], "w"), indent=1)
