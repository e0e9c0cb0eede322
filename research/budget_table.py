"""The retained-budget sweep as markdown: one row per (suite, budget, request), then the worst row per budget.

    python -m research.budget_table benchmarks/budget/budget-*.json > benchmarks/budget/budget-sweep.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zeroshot_unlearn.harness.bench import row_requested

PROTOCOL_BUDGET = {"digits": 400}  # 5% of the training split; the CIFAR suites: 2,500


def rows(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        for row in result["rows"]:
            if row["method"] != "anti_memory":
                continue
            original = next(r for r in result["rows"] if r["method"] == "original" and row_requested(r) == row_requested(row))
            out.append({"suite": result["suite"], "budget": result["retain_budget"], **row, "requested": row_requested(row),
                        "rebound_original": original.get("rebound_df")})
    return sorted(out, key=lambda r: (r["suite"], r["budget"], len(r["requested"]), r["requested"]))


def fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main(paths: list[str]) -> str:
    table = rows(paths)
    lines = ["| suite | budget | classes | retained | Df (orig.) | Dr | ΔDr-ceiling | rebound Df (orig.) | "
             "MIA-forget AUC | epoch-eq. CPU | self-check |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in table:
        over = " (over 5%)" if r["budget"] > PROTOCOL_BUDGET.get(r["suite"], 2500) else ""
        check = "–" if r.get("self_check_passed") is None else \
            f"{'pass' if r['self_check_passed'] else 'FAIL'} ({fmt(r.get('self_check_figure', r.get('self_check_forget_rate')), 1)}%)"
        lines.append(f"| {r['suite']} | {r['budget']}{over} | {{{','.join(map(str, r['requested']))}}} | "
                     f"{r['retained_images']} | {fmt(r['df'])} ({fmt(r['df_original'])}) | {fmt(r['dr'])} | "
                     f"{r['dr'] - r['dr_original_masked']:+.2f} | {fmt(r['rebound_df'])} ({fmt(r['rebound_original'])}) | "
                     f"{fmt(r.get('mia_forget_auc'), 3)} | {fmt(r.get('epoch_equivalents_cpu'), 3)} | {check} |")
    lines += ["", "Worst row per budget (largest Df; lowest ΔDr-ceiling; largest rebound; largest epoch-eq.):", "",
              "| suite | budget | Df max | ΔDr-ceiling worst | rebound Df max | epoch-eq. CPU max | self-check failures |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for key in sorted({(r["suite"], r["budget"]) for r in table}):
        mine = [r for r in table if (r["suite"], r["budget"]) == key]
        lines.append(f"| {key[0]} | {key[1]} | {max(r['df'] for r in mine):.2f} | "
                     f"{min(r['dr'] - r['dr_original_masked'] for r in mine):+.2f} | "
                     f"{fmt(max(r['rebound_df'] or 0.0 for r in mine))} | "
                     f"{max(r['epoch_equivalents_cpu'] or 0.0 for r in mine):.3f} | "
                     f"{sum(r.get('self_check_passed') is False for r in mine)} of {len(mine)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1:]))
