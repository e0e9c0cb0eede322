"""Summary table and scatter plot of ``research/selfcheck_study.py``'s rows (benchmarks/selfcheck/).

    python -m research.selfcheck_table benchmarks/selfcheck/study-digits.jsonl benchmarks/selfcheck/study-cifar10-resnet20.jsonl
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from scipy.stats import spearmanr

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "selfcheck"
THRESHOLD = 10.0  # self_check.max_figure
FIGURES = {
    "impressions (default)": lambda r: r["orig_confident"],
    "inversion (max with impressions)": lambda r: max(r["self_inversion"], _zero(r["orig_confident"])),
    "impressions, forget probability": lambda r: r["orig_mass"],
    "retained images, forget probability / original's": lambda r: r.get("retained_mass", math.nan),
}


def _zero(value: float) -> float:
    return 0.0 if value is None or math.isnan(value) else value


def summary(rows: list[dict]) -> list[str]:
    lines = ["| figure | runs | Df >= 5 | missed (figure <= 10) | Df <= 1 | failed wrongly (figure > 10) | "
             "Spearman rho vs Df |", "|---|---|---|---|---|---|---|"]
    for name, figure in FIGURES.items():
        usable = [r for r in rows if not math.isnan(_nan(figure(r)))]
        high = [r for r in usable if r["df"] >= 5]
        low = [r for r in usable if r["df"] <= 1]
        rho = spearmanr([figure(r) for r in usable], [r["df"] for r in usable]).statistic
        lines.append(f"| {name} | {len(usable)} | {len(high)} | {sum(figure(r) <= THRESHOLD for r in high)} | "
                     f"{len(low)} | {sum(figure(r) > THRESHOLD for r in low)} | {rho:.3f} |")
    return lines


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = {}
    for path in sys.argv[1:]:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
        suites[rows[0]["suite"]] = rows
    text = []
    for suite, rows in suites.items():
        text += [f"### {suite}: {len(rows)} runs", "", *summary(rows), ""]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for axis, name in zip(axes, ("impressions (default)", "inversion (max with impressions)")):
        for suite, rows in suites.items():
            axis.scatter([r["df"] for r in rows], [_zero(FIGURES[name](r)) for r in rows], s=12, alpha=0.6,
                         label=suite)
        axis.axhline(THRESHOLD, color="grey", ls="--", lw=0.8)
        axis.axvspan(1, 5, color="grey", alpha=0.1)
        axis.set(title=f"self-check figure: {name}", xlabel="test Df (%)")
    axes[0].set_ylabel("check figure (%)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(OUT / "check-vs-df.png", dpi=110)
    print("\n".join(text))


if __name__ == "__main__":
    main()
