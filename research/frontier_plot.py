"""Every measured {3,7} model on one picture: probe-Df against Dr, with the representation goal drawn in.

Reads the result files in this folder (nothing is typed in by hand): the bench runs on request
{3,7} (rows with a probe-Df), the subspace-distillation and regrowth runs, and the feature projections of
``erasure_bound.py`` (operations on the original's features, not networks: drawn apart). Dr is the
unlearned model's retained accuracy; for the original and the projections it is the masked-head Dr
(the ceiling), since a model that forgot scores its retained accuracy with the forget logits low.

    python -m research.frontier_plot --out benchmarks/depth/frontier-cifar10-resnet20-3-7.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from research.common import RESULTS, result_file
from zeroshot_unlearn.harness.bench import row_requested
from zeroshot_unlearn.io import atomic_path, write_json

BENCH_FILES = ("ablation-cifar10-resnet20.json", "frontier-sp-0.5.json", "frontier-sp-0.7.json",
               "frontier-regrow-0.5-e4.json", "frontier-regrow-0.7-e4.json", "frontier-regrow-0.5-e4-clip20.json",
               "frontier-regrow-e16.json", "frontier-regrow-budget8000-e5.json", "frontier-masked-kd-strong.json",
               "depth-representation-cifar10-resnet20-3-7.json", "depth-regrow-e16-hard-labels.json",
               "depth-regrow-e16-lr0.06.json", "depth-representation-lr0.045.json",
               "depth-representation-lr0.06-shrink0.8.json",
               *sorted(p.name for p in RESULTS.rglob("depth-mechanism-*.json")))
SCRIPT_FILES = {"subspace-distillation-cifar10-resnet20.json": "subspace distillation",
                "regrowth-targets-cifar10-resnet20.json": "layer3 regrown"}
"""Result files of the measurement scripts (a ``runs`` list) and the label prefix of their points."""


def _overrides(run: dict) -> str:
    settings = run.get("overrides") or {}
    return ", ".join(f"{k} {v}" for k, v in settings.items())


def bench_points(names=BENCH_FILES) -> list[dict]:
    """(label, kind, Dr, probe-Df) of every {3,7} row with a probe in the bench files; the original,
    the retrain reference and the logit mask once."""
    points, seen_anchors = [], set()
    for name in names:
        path = result_file(name)
        if not path.exists():
            continue
        run = json.loads(path.read_text())
        for row in run["rows"]:
            if row_requested(row) != [3, 7] or row.get("probe_df") is None:
                continue
            method = row["method"]
            if method in ("original", "retrain", "logit_mask"):
                if method in seen_anchors:
                    continue
                seen_anchors.add(method)
                dr = row["dr_original_masked"] if method == "original" else row["dr"]
                points.append({"label": method, "kind": "anchor", "dr": dr, "probe_df": row["probe_df"]})
                continue
            # The protocol's budget is 2,500; a run over it says so in its label.
            over_budget = f"retain budget {run['retain_budget']}" if run["retain_budget"] != 2500 else ""
            note = ", ".join(filter(None, [_overrides(run), over_budget]))
            points.append({"label": f"{method}" + (f" ({note})" if note else ""), "kind": "network",
                           "dr": row["dr"], "probe_df": row["probe_df"], "source": name})
    return points


def other_points() -> list[dict]:
    points = []
    for name, prefix in SCRIPT_FILES.items():
        path = result_file(name)
        if path.exists():
            for row in json.loads(path.read_text())["runs"]:
                points.append({"label": f"{prefix}: {row['config']}", "kind": "network",
                               "dr": row["dr_masked"], "probe_df": row["probe_df"], "source": name})
    null_space = result_file("null-space-cifar10-resnet20.json")
    if null_space.exists():
        for row in json.loads(null_space.read_text())["edits"]:
            if row["energy"] is None:
                continue
            kind = "network" if row["edit"].startswith("layer3") else "projection"
            points.append({"label": f"null space: {row['edit']} ({row['energy']:.1%})", "kind": kind,
                           "dr": row["dr_masked"], "probe_df": row["probe_df"], "data_used": "retained",
                           "source": null_space.name})
    erasure = result_file("erasure-bound-cifar10-resnet20.json")
    if erasure.exists():
        for row in json.loads(erasure.read_text())["projections"]:
            if row["projection"].startswith("none"):
                continue
            points.append({"label": row["projection"], "kind": "projection", "dr": row["dr_masked_head"],
                           "probe_df": row["probe_df"], "data_used": row["data_used"], "source": erasure.name})
    return points


FRONTIER_GOAL = (92.5, 75.0)
"""The deep-forgetting issue's frontier goal: a network with Dr ≥ 92.5 and probe-Df ≤ 75."""


def plot(points: list[dict], retrain: dict, ceiling: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 6))
    ax.fill_between([retrain["dr"] - 0.5, ceiling + 0.5], 0, retrain["probe_df"] + 3, color="tab:green", alpha=0.15,
                    label="depth=representation floor: probe-Df ≤ retrain + 3, Dr ≥ retrain − 0.5")
    ax.fill_between([FRONTIER_GOAL[0], ceiling + 0.5], 0, FRONTIER_GOAL[1], color="tab:orange", alpha=0.10,
                    label=f"frontier goal: Dr ≥ {FRONTIER_GOAL[0]}, probe-Df ≤ {FRONTIER_GOAL[1]:.0f}")
    styles = {"anchor": ("*", "black", 160), "network": ("o", "tab:blue", 36), "projection": ("x", "tab:gray", 36)}
    labelled = set()
    for p in points:
        kind = p["kind"]
        if kind == "projection" and p.get("data_used", "").startswith("forget images"):
            marker, colour, size = "+", "tab:red", 40
            legend = "feature projection using real forget images (oracle, not a network)"
        else:
            marker, colour, size = styles[kind]
            legend = {"anchor": "original / retrain / logit mask", "network": "trained network, zero forget images",
                      "projection": "feature projection, no forget images (not a network)"}[kind]
        ax.scatter(p["dr"], p["probe_df"], marker=marker, c=colour, s=size,
                   label=None if legend in labelled else legend, zorder=3)
        labelled.add(legend)
    # Name the anchors and the two rows a reader looks for first; anchors at one spot share a label.
    named: dict[tuple[float, float], list[str]] = {}
    for p in points:
        if p["kind"] == "anchor" or p["label"] in ("anti_memory", "masked_kd"):
            named.setdefault((p["dr"], p["probe_df"]), []).append(p["label"])
    for (dr, probe), labels in named.items():
        ax.annotate(" / ".join(labels), (dr, probe), textcoords="offset points", xytext=(-6, 6), ha="right",
                    fontsize=8)
    ax.set_xlabel("Dr: retained-class test accuracy (%)")
    ax.set_ylabel("probe-Df: linear probe on penultimate features, forget-class test accuracy (%)")
    ax.set_title("cifar10-resnet20, forget {3, 7}, 2,496 retained images unless labelled")
    ax.set_xlim(min(p["dr"] for p in points) - 1, ceiling + 0.5)
    ax.set_ylim(min(p["probe_df"] for p in points) - 3, max(p["probe_df"] for p in points) + 3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(RESULTS / "depth" / "frontier-cifar10-resnet20-3-7.png"))
    args = parser.parse_args()
    points = bench_points() + other_points()
    anchors = {p["label"]: p for p in points if p["kind"] == "anchor"}
    # The original's point sits at its masked-head Dr, the ceiling the goal is measured from.
    plot(points, anchors["retrain"], anchors["original"]["dr"], Path(args.out))
    write_json(Path(args.out).with_suffix(".json"), {"points": points})
    print(f"{len(points)} points -> {args.out}")


if __name__ == "__main__":
    main()
