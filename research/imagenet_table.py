"""The tables of docs/imagenet.md from the files of benchmarks/imagenet-efficientnet_lite0/ (issue 37, item 4).

    python -m research.imagenet_table            # prints the markdown
"""

from __future__ import annotations

import json
from pathlib import Path

from zeroshot_unlearn.harness.bench import row_requested

FOLDER = Path("benchmarks/imagenet-efficientnet_lite0")
NAMES = {0: "tench", 574: "golf ball", 701: "parachute", 258: "Samoyed"}


def _request(classes: list[int]) -> str:
    if len(classes) == 10:
        return "all 10 dog breeds" if 258 in classes else "all 10 Imagenette classes"
    return " + ".join(f"{NAMES.get(c, c)} {c}" for c in classes)


def _f(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _check(row: dict) -> str:
    passed = row.get("self_check_passed")
    figure = row.get("self_check_figure")
    return "inconclusive" if passed is None else f"{'pass' if passed else 'FAIL'} ({_f(figure, 1)}%)"


def _original_auc() -> dict[str, float]:
    path = FOLDER / "original-mia.json"
    return json.loads(path.read_text(encoding="utf-8"))["mia_forget_auc_per_class_original"] if path.is_file() else {}


def _phases(row: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in (row.get("timings") or {}).items() if k != "total")


def _auc_per_class(row: dict, original: dict[str, float]) -> str:
    """Each forget class's MIA-forget AUC beside the original's (the row's own, else original-mia.json)."""
    reference = row.get("mia_forget_auc_per_class_original") or original
    return ", ".join(f"{NAMES.get(int(c), c)} {v:.2f} ({_f(reference.get(c))})"
                     for c, v in (row.get("mia_forget_auc_per_class") or {}).items())


def suite_table(path: Path, title: str) -> list[str]:
    result = json.loads(path.read_text(encoding="utf-8"))
    original = _original_auc()
    lines = [f"**{title}** (`{path.name}`; retained: {result['retain_budget']} images at most)", "",
             "| request | retained imgs (classes shown) | Df (original) | Dr shown: ours / ceiling | "
             "Dr unshown: ours / ceiling | MIA-forget AUC per class: ours (original) | self-check | time s (CPU epoch-eq. of ImageNet) | "
             "phases s | peak GiB (process / worker) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        peak = r.get("peak_memory_gib") or {}
        phases, auc = _phases(r), _auc_per_class(r, original)
        lines.append(
            f"| {_request(row_requested(r))} | {r['retained_images']} ({r.get('retained_classes_shown')}) | "
            f"{_f(r['df'])} ({_f(r['df_original'])}) | {_f(r.get('dr_shown'))} / {_f(r.get('dr_shown_ceiling'))} | "
            f"{_f(r.get('dr_unshown'))} / {_f(r.get('dr_unshown_ceiling'))} | {auc or '–'} | {_check(r)} | "
            f"{_f(r['time_s'], 1)} ({_f(r.get('epoch_equivalents_cpu'), 5)}) | {phases} | "
            f"{_f(peak.get('process'))} / {_f(peak.get('largest_child'))} |")
    return lines + [""]


def data_free_table(path: Path) -> list[str]:
    """The data-free mode (no image at all): Dr over every other subset class beside the original's."""
    result = json.loads(path.read_text(encoding="utf-8"))
    original = _original_auc()
    lines = [f"**No image at all: the data-free mode** (`{path.name}`)", "",
             "| request | Df (original) | Dr, other subset classes: ours / original / ceiling | "
             "MIA-forget AUC per class: ours (original) | self-check | time s (CPU epoch-eq. of ImageNet) | phases s | peak GiB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        phases, auc = _phases(r), _auc_per_class(r, original)
        lines.append(
            f"| {_request(row_requested(r))} | {_f(r['df'])} ({_f(r['df_original'])}) | "
            f"{_f(r['dr'])} / {_f(r['dr_original'])} / {_f(r['dr_original_masked'])} | {auc or '–'} | {_check(r)} | "
            f"{_f(r['time_s'], 1)} ({_f(r.get('epoch_equivalents_cpu'), 5)}) | {phases} | {_f((r.get('peak_memory_gib') or {}).get('process'))} |")
    return lines + [""]


def main() -> None:
    out = []
    for name, title in (("imagenet-efficientnet_lite0.json", "Retained: the train/ images of every other subset class"),
                        ("imagenet-efficientnet_lite0-nette.json", "Retained: the other Imagenette classes only"),
                        ("impair-2pct.json", "The impair cut to 2% of its steps (the self-check must fail these)")):
        if (FOLDER / name).is_file():
            out += suite_table(FOLDER / name, title)
    if (FOLDER / "data-free.json").is_file():
        out += data_free_table(FOLDER / "data-free.json")
    print("\n".join(out))


if __name__ == "__main__":
    main()
