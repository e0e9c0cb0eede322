"""How precisely must a data-free method know where a forgotten class lives in the features?

A measurement behind the representation issue (benchmarks/RESULTS.md, section 2), not part of
the library. On the original model's frozen penultimate features it projects out, for each
forget class, one direction (its class mean minus the overall mean) and reruns PROTOCOL.md's
probe-Df. With the exact direction (computed from real forget-class images: an oracle no
data-free method has) the probe loses the class; the script then rotates that direction away
by a known angle, and tries the estimates a data-free method *can* form: the classifier rows,
the mean feature of the generator's class impressions, and the forget classes' mean recovered
from BatchNorm running statistics minus the retained subset's. Then the other way round: keep only
the subspace the retained classes' classifier rows span (what the masked head reads; no forget data),
with or without the forget rows' components inside it. Last, the structured form: switch off the
channels that respond most to the forget classes (ranked from real forget images, impressions, or
the classifier rows), as channel-pruning unlearning methods do.

    python -m research.erasure_bound --data-dir ../shared/data --forget 3,7 \
        --out benchmarks/representation-research/erasure-bound-cifar10-resnet20.json

About 3 minutes on two CPU cores.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from research.common import complement_within, keeper, load_request, projector, request_parser, save_result, table
from zeroshot_unlearn.audit.metrics import Outputs, model_outputs, probe_df
from zeroshot_unlearn.augment import Augment
from zeroshot_unlearn.evaluation import mask_logits
from zeroshot_unlearn.generators import create_generator, fit_generator
from zeroshot_unlearn.recipes import load_recipe
from zeroshot_unlearn.surgery import HeadInput


def rotated(direction: torch.Tensor, cosine: float, generator: torch.Generator) -> torch.Tensor:
    """``direction`` turned by arccos(cosine) towards a random orthogonal direction of the same norm."""
    noise = torch.randn(direction.shape, generator=generator)
    noise = noise - (noise @ direction) / (direction @ direction) * direction
    noise = noise / noise.norm() * direction.norm()
    angle = math.acos(cosine)
    return math.cos(angle) * direction + math.sin(angle) * noise


@torch.no_grad()
def batchnorm_input_moments(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel mean of every BatchNorm layer's input over ``x`` (eval mode)."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            def hook(_m, inputs, _o, name=name):
                t = inputs[0]
                sums[name] = sums.get(name, 0) + t.sum((0, 2, 3))
                counts[name] = counts.get(name, 0) + t.shape[0] * t.shape[2] * t.shape[3]
            handles.append(module.register_forward_hook(hook))
    for i in range(0, len(x), 500):
        model(x[i:i + 500])
    for handle in handles:
        handle.remove()
    return {name: sums[name] / counts[name] for name in sums}


def main() -> None:
    args = request_parser(__doc__).parse_args()

    torch.manual_seed(args.seed)
    request = load_request(args)
    forget, model, data, retain = request.forget, request.model, request.data, request.retain
    num_classes = 10
    train, test = model_outputs(model, data.train), model_outputs(model, data.test)
    forget_test = test.of_classes(forget)
    retained_test = test.where(~torch.isin(test.y, torch.tensor(forget)))
    retain_out = model_outputs(model, retain)
    head = model.linear
    overall = train.features.mean(0)
    retained_mean = retain_out.features.mean(0)
    class_means = torch.stack([train.features[train.y == c].mean(0) for c in range(num_classes)])
    oracle = {c: class_means[c] - overall for c in forget}
    rows: list[dict] = []

    def measure(name: str, data_used: str, directions: list[torch.Tensor] | None, centre=overall,
                project=None) -> None:
        if project is None:
            project = projector(directions, centre) if directions else (lambda f: f)
        projected_train = project(train.features)
        probe = probe_df(Outputs(train.logits, projected_train, train.y),
                         Outputs(forget_test.logits, project(forget_test.features), forget_test.y))
        logits = mask_logits(head(project(retained_test.features)).detach(), forget)
        dr = float((logits.argmax(1) == retained_test.y).float().mean() * 100)
        cosines = [float(F.cosine_similarity(d, oracle[c], 0)) for d, c in zip(directions or [], forget)]
        rows.append({"projection": name, "data_used": data_used, "dims_kept": int(torch.linalg.matrix_rank(
                         projected_train - projected_train.mean(0))),
                     "probe_df": round(probe, 2),
                     "dr_masked_head": round(dr, 2),
                     "cosine_to_oracle": [round(x, 3) for x in cosines] or None})
        print(rows[-1], flush=True)

    measure("none (original features)", "-", None)
    measure("oracle: forget-class mean - overall mean", "forget images (oracle)", [oracle[c] for c in forget])
    rng = torch.Generator().manual_seed(args.seed)
    for cosine in (0.999, 0.995, 0.99, 0.98, 0.95):
        measure(f"oracle turned to cosine {cosine}", "forget images (oracle)",
                [rotated(oracle[c], cosine, rng) for c in forget])
    weights = head.weight.detach()
    forget_rows = {c: weights[c] - weights.mean(0) for c in forget}
    measure("classifier rows (w_c - mean w)", "none", list(forget_rows.values()))

    # Keep only what the masked head reads: the retained classes' rows span an 8-d subspace, and the
    # retained logits W_r f are unchanged by projecting f onto it, so Dr stays at the ceiling exactly.
    # (The centre only shifts every feature by a constant: it changes neither the probe nor W_r f.)
    retained_rows = weights[[c for c in range(num_classes) if c not in forget]].T
    measure("keep only the retained rows' span", "none", None, project=keeper(retained_rows, retained_mean))
    for c in forget:
        measure(f"... minus the forget row {c} inside it", "none", None,
                project=keeper(complement_within(retained_rows, [forget_rows[c]]), retained_mean))
    measure("... minus both forget rows inside it", "none", None,
            project=keeper(complement_within(retained_rows, list(forget_rows.values())), retained_mean))

    recipe = load_recipe("cifar_resnet")
    cfg = model.pretrained_cfg
    generator = create_generator(recipe.generator, num_classes=num_classes, input_size=cfg["input_size"],
                                 mean=cfg["mean"], std=cfg["std"], forget=forget)
    augment = Augment(recipe.augment, cfg["mean"], cfg["std"], cfg["input_size"][1:])
    fit_generator(generator, model, forget, recipe.generator, augment, progress=False)
    with torch.no_grad(), HeadInput(model) as captured:
        for c in forget:
            model(generator.sample(torch.full((512,), c)))
    impressions = [f.mean(0) - retained_mean for f in captured.values]
    measure("generator impressions (mean feature - retained mean)", "retained", impressions, centre=retained_mean)

    # Channel pruning, the structured form of erasure (class-discriminative pruning, Wang et al.,
    # WWW 2022, prunes the channels that respond most to the forget class): a channel can be
    # switched off in the weights, unlike a direction. Rank the 64 channels by how much more they
    # respond to the forget classes than to retained images, zero the top k, rerun the probe.
    retained_std = retain_out.features.std(0).clamp(min=1e-6)
    forget_train_mean = train.features[torch.isin(train.y, torch.tensor(forget))].mean(0)
    rankings = {
        "real forget images": ("forget images (oracle)", (forget_train_mean - retained_mean) / retained_std),
        "impressions": ("retained", (torch.cat(captured.values).mean(0) - retained_mean) / retained_std),
        "classifier rows": ("none", weights[forget].clamp(min=0).sum(0) / retained_rows.abs().mean(1)),
    }
    for source, (data_used, score) in rankings.items():
        for k in (8, 16, 24):
            keep = torch.ones_like(score)
            keep[torch.argsort(score, descending=True)[:k]] = 0
            measure(f"prune the {k} channels most specific to the forget classes ({source})", data_used, None,
                    project=lambda f, keep=keep: f * keep)

    # BatchNorm running means average every class the model was trained on; subtracting the retained
    # classes' share leaves the forget classes' mean, if the running means were precise enough.
    share = len(forget) / num_classes
    retained_bn = batchnorm_input_moments(model, retain.x)
    forget_bn = batchnorm_input_moments(model, data.train.x[torch.isin(data.train.y, torch.tensor(forget))])
    all_bn = batchnorm_input_moments(model, data.train.x)
    bn_rows = []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            std = module.running_var.sqrt()
            estimate = (module.running_mean - (1 - share) * retained_bn[name]) / share
            signal = (forget_bn[name] - retained_bn[name]) / std
            error = (estimate - forget_bn[name]) / std
            offset = ((module.running_mean - all_bn[name]) / std).abs().mean()
            bn_rows.append({"layer": name, "running_mean_offset": round(float(offset), 3),
                            "signal_norm": round(float(signal.norm()), 3),
                            "error_norm": round(float(error.norm()), 3),
                            "cosine": round(float(F.cosine_similarity(estimate - retained_bn[name],
                                                                      forget_bn[name] - retained_bn[name], 0)), 3)})
    result = {"model": "cifar10_resnet20", "checkpoint": args.checkpoint, "forget": forget,
              "retained_images": len(retain), "seed": args.seed, "projections": rows,
              "batchnorm_subtraction": bn_rows}
    projections = table(
        ["projection", "data used", "dims kept", "cosine to oracle", "probe-Df", "Dr (masked head)"],
        [[r["projection"], r["data_used"], str(r["dims_kept"]),
          " / ".join(f"{x:.3f}" for x in r["cosine_to_oracle"]) if r["cosine_to_oracle"] else "–",
          f"{r['probe_df']:.2f}", f"{r['dr_masked_head']:.2f}"] for r in rows])
    batchnorm = table(
        ["BatchNorm layer", "running mean − data mean (σ, mean over channels)", "forget-mean signal (σ, norm over "
         "channels)", "subtraction error (σ, norm)", "cosine"],
        [[b["layer"], f"{b['running_mean_offset']:.3f}", f"{b['signal_norm']:.2f}", f"{b['error_norm']:.2f}",
          f"{b['cosine']:.2f}"] for b in bn_rows])
    save_result(args.out, result, [*projections, "", *batchnorm])


if __name__ == "__main__":
    main()
