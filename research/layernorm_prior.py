"""The data-free mode's LayerNorm prior on a trained model whose head reads a LayerNorm (issue 46, item 3).

No trained ViT, ConvNeXt or Swin at 224 px reaches this machine, so the model is the common fine-tune a user
holds: the real ImageNet EfficientNet-Lite0 backbone (PyPI weights) with a new head, ``LayerNorm(1280)`` then
``Linear(1280, 20)``, trained on the 800 train/ images of the ImageNet subset's 20 classes (AdamW, on features
computed once; the backbone frozen). Its head reads the LayerNorm's output itself, as a ViT's head reads its
class token after the final norm and a ConvNeXt's reads its norm after pooling.

Then tench is forgotten three ways, each measured on the subset's 1,000 validation images (Df: tench's 50;
Dr: the other 950), beside the original:

- ``retained``: the head-only path with the other 19 classes' train/ images (the default with data);
- ``data-free, LayerNorm prior``: no image at all, memories made as the norm's inputs and mapped through it
  (``data_free.layernorm_prior: true``);
- ``data-free, no projection``: the same prior's mean and spread without the map onto the norm's outputs,
  to show what the map adds.

    python -m research.layernorm_prior --out benchmarks/imagenet-families/layernorm-prior.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
import torch.nn as nn


def build(data_dir: Path, seed: int, epochs: int):
    from zeroshot_unlearn import load_model
    from zeroshot_unlearn.data import load_data
    model = load_model("tf_efficientnet_lite0", pretrained=True)
    wnids = sorted(p.name for p in (data_dir / "imagenet-subset" / "train").iterdir() if p.is_dir())
    model.classifier = nn.Sequential(nn.LayerNorm(1280), nn.Linear(1280, len(wnids)))
    model.num_classes = len(wnids)
    model.pretrained_cfg = dict(model.pretrained_cfg, num_classes=len(wnids), label_names=wnids,
                                architecture="tf_efficientnet_lite0")
    data = load_data(data_dir / "imagenet-subset", model)
    start = time.perf_counter()
    norm, linear = model.classifier
    pooled_train, pooled_test = _norm_inputs(model, data.train), _norm_inputs(model, data.test)
    train_y, test_y = data.train.y, data.test.y
    feature_seconds = time.perf_counter() - start
    torch.manual_seed(seed)
    norm.reset_parameters()
    linear.reset_parameters()
    optimizer = torch.optim.AdamW(model.classifier.parameters(), lr=1e-3, weight_decay=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(pooled_train), generator=generator)
        for i in range(0, len(order), 64):
            rows = order[i:i + 64]
            loss = nn.functional.cross_entropy(model.classifier(pooled_train[rows]), train_y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.classifier.state_dict().values()))
    with torch.no_grad():
        train_acc = float((model.classifier(pooled_train).argmax(1) == train_y).float().mean() * 100)
        test_acc = float((model.classifier(pooled_test).argmax(1) == test_y).float().mean() * 100)
    return model, data, pooled_test, test_y, {"head_sha256": digest.hexdigest(), "train_accuracy": round(train_acc, 2),
                                               "test_accuracy": round(test_acc, 2), "epochs": epochs,
                                               "feature_seconds": round(feature_seconds, 1)}


@torch.no_grad()
def _norm_inputs(model, dataset) -> torch.Tensor:
    from zeroshot_unlearn.data.datasets import iter_batches

    captured = []
    handle = model.classifier[0].register_forward_pre_hook(lambda _m, args: captured.append(args[0].flatten(1)))
    try:
        for x, _ in iter_batches(dataset, 32):
            model.eval()(x)
    finally:
        handle.remove()
    return torch.cat(captured)


@torch.no_grad()
def df_dr(head: nn.Module, pooled: torch.Tensor, labels: torch.Tensor, forget: int) -> tuple[float, float]:
    pred = head(pooled).argmax(1)
    is_forget = labels == forget
    return (round(float((pred[is_forget] == forget).float().mean() * 100), 2),
            round(float((pred[~is_forget] == labels[~is_forget]).float().mean() * 100), 2))


def main() -> None:
    from zeroshot_unlearn import forget_classes
    from zeroshot_unlearn.generators import features as feature_module

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    model, data, pooled_test, test_y, card = build(Path(args.data_dir), args.seed, args.epochs)
    tench = 0  # n01440764 sorts first among the 20 wnids
    rows = [{"run": "original", **dict(zip(("df", "dr"), df_dr(model.classifier, pooled_test, test_y, tench)))}]
    masked = model.classifier
    with torch.no_grad():
        logits = masked(pooled_test)
        logits[:, tench] = -float("inf")
        ceiling = float((logits.argmax(1)[test_y != tench] == test_y[test_y != tench]).float().mean() * 100)
    retain = data.train.of_classes([c for c in range(20) if c != tench])
    runs = [("retained", retain, {}), ("data-free, LayerNorm prior", None, {"data_free.layernorm_prior": True})]
    for name, retained, overrides in runs:
        start, cpu = time.perf_counter(), time.process_time()
        result = forget_classes(model, [tench], retain=retained, recipe="imagenet", overrides=overrides,
                                seed=args.seed, progress=False, strict=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        df, dr = df_dr(result.model.classifier, pooled_test, test_y, tench)
        rows.append({"run": name, "df": df, "dr": dr, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "phases_s": {k: round(v, 1) for k, v in result.timings.items()},
                     "self_check": result.self_check.describe()})
    # The same prior without the map onto the norm's outputs: what the map adds.
    original_prior = feature_module.head_input_prior

    def without_map(*a, **k):
        import dataclasses

        return dataclasses.replace(original_prior(*a, **k), emit=None)

    import zeroshot_unlearn.methods.anti_memory.head_only as head_only

    head_only.head_input_prior = without_map
    try:
        result = forget_classes(model, [tench], retain=None, recipe="imagenet",
                                overrides={"data_free.layernorm_prior": True}, seed=args.seed, progress=False,
                                strict=False)
    finally:
        head_only.head_input_prior = original_prior
    rows.append({"run": "data-free, no projection", **dict(zip(("df", "dr"), df_dr(result.model.classifier,
                                                                                  pooled_test, test_y, tench)))})
    out = {"model": "tf_efficientnet_lite0 backbone (PyPI weights) + LayerNorm(1280) + Linear(1280, 20)",
           "card": card, "ceiling_dr": round(ceiling, 2), "forget": "tench (n01440764)",
           "test": "the subset's 1,000 validation images", "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
