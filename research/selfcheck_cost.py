"""The self-check's share of a 224-px call (issue 45, item 3): the five Lite0 requests, one process, nothing else
running, each ``forget_classes`` call timed phase by phase (the bench suites time the same calls, but on a
machine shared with other work their shares drift with the load).

    python -m research.selfcheck_cost --out benchmarks/imagenet-efficientnet_lite0/selfcheck-cost.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

REQUESTS = [[0], [574, 701], [258], [155, 159, 162, 167, 182, 193, 207, 229, 258, 273],
            [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]]


def main() -> None:
    from zeroshot_unlearn import forget_classes, load_model
    from zeroshot_unlearn.data import load_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    model = load_model("tf_efficientnet_lite0", pretrained=True)
    data = load_data(Path(args.data_dir) / "imagenet-subset", model)
    rows = []
    for forget in REQUESTS:
        retain = data.train.of_classes([c for c in sorted(set(data.train.y.tolist())) if c not in forget])
        start, cpu = time.perf_counter(), time.process_time()
        result = forget_classes(model, forget, retain=retain, seed=0, progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        timings = result.timings
        rows.append({"requested": forget, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "phases_s": {k: round(v, 1) for k, v in timings.items()},
                     "check_share": round(100 * timings["self_check"] / timings["total"], 1),
                     "impressions": result.self_check.impressions, "figure": result.self_check.figure,
                     "passed": result.self_check.passed})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps({"model": "tf_efficientnet_lite0 (PyPI weights)", "recipe": "imagenet",
                                          "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
