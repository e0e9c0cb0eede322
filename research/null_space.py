"""Is there room for null-space edits (UNSC, PGU) in this model? The deep-forgetting issue's check.

A measurement behind the deep-forgetting issue (benchmarks/RESULTS.md §11), not part of the
library. Null-space methods change a layer only where the retained data puts no energy: the
principal subspace of the retained inputs of each layer (for a convolution, its unfolded input
patches) is kept, and the forgetting edit acts on the rest. That needs forget-class inputs to
carry energy outside it. Per convolution of ``layer3`` and for the head's input (the
penultimate features), this script estimates the subspace from the retained subset at 99% and
99.9% of its energy and reports the share of energy outside it for held-out retained test images
and for real forget-class training images (an oracle, used here only to measure). Then the
closed-form edit: every ``layer3`` convolution's weights times the projector onto that subspace
(no gradient, no generator), and on the penultimate features the projection onto the same kind
of subspace; probe-Df and Dr (masked head) of PROTOCOL.md after each.

    python -m research.null_space --data-dir ../shared/data --forget 3,7 \\
        --out benchmarks/representation-research/null-space-cifar10-resnet20.json

About 4 minutes on one CPU thread.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from research.common import load_request, request_parser, save_result, table
from zeroshot_unlearn.audit.metrics import Outputs, model_outputs, probe_df
from zeroshot_unlearn.evaluation import mask_logits
from zeroshot_unlearn.surgery import conv_weights_in
from zeroshot_unlearn.validate import retained_classes

ENERGIES = (0.99, 0.999)
POSITIONS = 16
"""Patch positions sampled per image and convolution (of 64 at layer3's 8x8): enough for a
576-dimensional covariance from 2,500 images, and it keeps the patch matrices in memory."""


@torch.no_grad()
def conv_patches(model: nn.Module, convs: dict[str, nn.Conv2d], x: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Each convolution's unfolded input patches over ``x``: (images x POSITIONS, in_channels x k x k)."""
    rng = torch.Generator().manual_seed(seed)
    found: dict[str, list[torch.Tensor]] = {name: [] for name in convs}

    def hook(name, conv):
        def grab(_m, inputs):
            patches = F.unfold(inputs[0], conv.kernel_size, conv.dilation, conv.padding, conv.stride)
            rows = torch.randint(patches.shape[2], (patches.shape[0], POSITIONS), generator=rng)
            found[name].append(torch.gather(patches, 2, rows[:, None, :].expand(-1, patches.shape[1], -1))
                               .transpose(1, 2).flatten(0, 1))
        return grab

    handles = [conv.register_forward_pre_hook(hook(name, conv)) for name, conv in convs.items()]
    try:
        for i in range(0, len(x), 250):
            model(x[i:i + 250])
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts) for name, parts in found.items()}


def principal_basis(rows: torch.Tensor, energy: float) -> torch.Tensor:
    """Orthonormal columns spanning ``energy`` of the rows' (uncentred) second moment: a linear layer
    acts on raw inputs, so the subspace is about the origin."""
    _, values, vectors = torch.linalg.svd(rows.double(), full_matrices=False)
    share = (values ** 2).cumsum(0) / (values ** 2).sum()
    keep = int((share < energy).sum()) + 1
    return vectors[:keep].T.float()


def outside_share(rows: torch.Tensor, basis: torch.Tensor) -> float:
    inside = rows @ basis
    return float(1 - inside.pow(2).sum() / rows.pow(2).sum()) * 100


def main() -> None:
    args = request_parser(__doc__).parse_args()
    torch.manual_seed(args.seed)
    request = load_request(args)
    forget, model, data, retain = request.forget, request.model, request.data, request.retain
    retained = retained_classes(10, forget)
    retained_test = data.test.of_classes(retained)
    held_out = retained_test.subset(torch.randperm(len(retained_test), generator=torch.Generator().manual_seed(1))[:1000])
    forget_train = data.train.of_classes(forget)
    forget_train = forget_train.subset(torch.arange(min(1000, len(forget_train))))
    convs = conv_weights_in(model, ["layer3"])
    modules = {name.removesuffix(".weight"): conv for name, conv in convs.items()}

    def protocol(candidate: nn.Module, project=None) -> tuple[float, float]:
        train, test = model_outputs(candidate, data.train), model_outputs(candidate, data.test)
        if project is not None:
            train = Outputs(train.logits, project(train.features), train.y)
            test = Outputs(test.logits, project(test.features), test.y)
        retained_out = test.of_classes(retained)
        logits = retained_out.logits if project is None else candidate.linear(project(retained_out.features))
        dr = float((mask_logits(logits, forget).argmax(1) == retained_out.y).float().mean() * 100)
        return probe_df(train, test.of_classes(forget)), dr

    patches = {split: conv_patches(model, modules, images.x, args.seed)
               for split, images in (("retain", retain), ("held_out", held_out), ("forget", forget_train))}
    features = {split: model_outputs(model, images).features
                for split, images in (("retain", retain), ("held_out", held_out), ("forget", forget_train))}
    share_rows, edit_rows = [], []
    probe, dr = protocol(model)
    edit_rows.append({"edit": "none (original)", "energy": None, "probe_df": probe, "dr_masked": dr})
    for energy in ENERGIES:
        edited = copy.deepcopy(model)
        for name, conv in modules.items():
            basis = principal_basis(patches["retain"][name], energy)
            share_rows.append({"layer": name, "energy": energy, "dims_kept": basis.shape[1],
                               "dims": basis.shape[0],
                               "outside_retained_held_out": outside_share(patches["held_out"][name], basis),
                               "outside_forget": outside_share(patches["forget"][name], basis)})
            target = dict(edited.named_modules())[name]
            with torch.no_grad():
                weight = target.weight.flatten(1)
                target.weight.copy_((weight @ basis @ basis.T).view_as(target.weight))
        probe, dr = protocol(edited)
        edit_rows.append({"edit": "layer3 convolutions' weights x retained-patch projector", "energy": energy,
                          "probe_df": probe, "dr_masked": dr})
        basis = principal_basis(features["retain"], energy)
        share_rows.append({"layer": "penultimate features", "energy": energy, "dims_kept": basis.shape[1],
                           "dims": basis.shape[0],
                           "outside_retained_held_out": outside_share(features["held_out"], basis),
                           "outside_forget": outside_share(features["forget"], basis)})
        probe, dr = protocol(model, project=lambda f, b=basis: f @ b @ b.T)
        edit_rows.append({"edit": "penultimate features x retained-feature projector", "energy": energy,
                          "probe_df": probe, "dr_masked": dr})
        print(share_rows[-1], edit_rows[-2:], flush=True)

    lines = table(["layer", "retained energy kept", "dims kept", "outside: retained (held out)",
                   "outside: forget (oracle)"],
                  [[r["layer"], f"{r['energy']:.1%}", f"{r['dims_kept']} / {r['dims']}",
                    f"{r['outside_retained_held_out']:.2f}%", f"{r['outside_forget']:.2f}%"] for r in share_rows])
    lines += [""] + table(["edit", "retained energy kept", "probe-Df", "Dr (masked head)"],
                          [[r["edit"], "–" if r["energy"] is None else f"{r['energy']:.1%}",
                            f"{r['probe_df']:.2f}", f"{r['dr_masked']:.2f}"] for r in edit_rows])
    save_result(args.out, {"forget": forget, "retain_budget": args.retain_budget, "seed": args.seed,
                           "positions_per_image": POSITIONS, "shares": share_rows, "edits": edit_rows}, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
