"""The audit at 224 px on the real EfficientNet-Lite0, with the baselines in the same run (issue 47).

One request (``--classes``, default tench), forgotten by every method that needs no forget image and runs at
224 px on this CPU, each with the subset's train/ images of the other classes where it reads retained data:

- ``anti_memory``: the default (the head alone, anti-memories at the head's input);
- ``anti_memory, fresh forget rows``: the same, its forget rows then drawn as a new head's (``forget_rows: fresh``);
- ``anti_memory_data_free``: no image at all;
- ``masked head distillation``: the same head training without anti-memories (``impair.anti_memory_batch: 0``):
  what the anti-memories add;
- ``logit_mask``: the forget logits hidden at the output, no weight changed.

(``masked_kd``, ``gkt``, ``unsir`` and ``finetune`` train the whole network; at 224 px on this CPU that is hours
a request, so they are not in this run.)

Then one :func:`~zeroshot_unlearn.audit.at_scale.audit_at_scale` over all of them, with the never-learnt
flowers as the band, written to ``--out`` (report.json, report.md, report.html) with the forget calls' timings.

    python -m research.imagenet_audit --out benchmarks/imagenet-audit/tench
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

METHODS = {
    "anti_memory": {},
    "anti_memory, fresh forget rows": {"overrides": {"forget_rows": "fresh"}},
    "anti_memory_data_free": {"data_free": True},
    "masked head distillation": {"overrides": {"impair.anti_memory_batch": 0}},
    "logit_mask": {"method": "logit_mask"},
}


def main() -> None:
    import torch

    from zeroshot_unlearn import forget_classes, load_model
    from zeroshot_unlearn.audit.at_scale import audit_at_scale
    from zeroshot_unlearn.data import load_data
    from zeroshot_unlearn.plan import class_ids

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--model", default="tf_efficientnet_lite0")
    parser.add_argument("--classes", nargs="+", default=["tench"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    data_dir = Path(args.data_dir)
    original = load_model(args.model, pretrained=True)
    forget = class_ids(original, args.classes)
    data = load_data(data_dir / "imagenet-subset", original)
    retain = data.train.of_classes([c for c in sorted(set(data.train.y.tolist())) if c not in forget])
    models, calls = {}, {}
    for name, how in METHODS.items():
        start, cpu = time.perf_counter(), time.process_time()
        result = forget_classes(original, forget, retain=None if how.get("data_free") else retain,
                                method=how.get("method"), overrides=how.get("overrides"), seed=args.seed,
                                progress=False, strict=False)
        calls[name] = {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(time.process_time() - cpu, 1),
                       "phases_s": {k: round(v, 1) for k, v in result.timings.items()},
                       "self_check": result.self_check.describe() if result.self_check else None}
        models[name] = result.model
        print(name, json.dumps(calls[name]), flush=True)
    start, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(args.seed)
    report = audit_at_scale(original, models, forget, train=data.train, test=data.test,
                            never_learnt=data_dir / "never-learnt-flowers", seed=args.seed)
    report.meta.update(audit_wall_s=round(time.perf_counter() - start, 1),
                       audit_cpu_s=round(time.process_time() - cpu, 1), calls=calls, model=args.model)
    report.save(args.out, overwrite=True)
    print((Path(args.out) / "report.md").read_text())


if __name__ == "__main__":
    main()
