"""The tables of docs/audit.md ("Over unlearning seeds, relearn with resolution, probes at every stage") from the
files of benchmarks/audit-seeds/ (issue 39; `bash research/audit_seeds.sh` writes them).

    python -m research.audit_seeds_table            # prints the markdown
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

from zeroshot_unlearn.audit.intervals import with_interval
from zeroshot_unlearn.audit.verdicts import VERDICT_COLUMNS, column_verdict, stage_flag

from .audit_table import cell

FOLDER = Path("benchmarks/audit-seeds")
SUITES = (("cifar10-resnet20", "cifar10-resnet20 {3,7}"), ("cifar100-resnet20", "cifar100-resnet20 rocket (69)"),
          ("digits", "digits {3,7}"))
MAX_TEST_DF = 2.5  # the self-check's default allowance, the verdicts' Df threshold without a reference
SPREAD = (("df", "Df", 2), ("dr", "Dr", 2), ("mia_forget_auc", "MIA-forget AUC", 3), ("qmia_auc", "per-example MIA AUC", 3),
          ("probe_df", "probe-Df", 2), ("rebound_df", "rebound Df", 2), ("relearn_steps", "relearn steps", 1),
          ("epoch_equivalents_cpu", "epoch-eq. (CPU)", 3))


def _spread(rows: list[dict], key: str, digits: int) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} "
            f"[{min(values):.{digits}f}, {max(values):.{digits}f}]")


def _files(suite: str) -> list[tuple[str, dict]]:
    out = []
    for depth in ("output", "representation"):
        path = FOLDER / f"{suite}-{depth}.json"
        if path.is_file():
            out.append((depth, json.loads(path.read_text(encoding="utf-8"))))
    return out


def main() -> None:
    lines = []
    for suite, title in SUITES:
        files = _files(suite)
        if not files:
            continue
        references = {r["method"]: r for _, result in files for r in result["rows"] if r["method"] in ("original", "retrain")}
        unlearned = {depth: [r for r in result["rows"] if r["method"] not in ("original", "retrain")]
                     for depth, result in files}
        original, retrain = references.get("original"), references.get("retrain")
        lines += [f"**{title}**", "", "Each reference measured once; the unlearned model over its seeds: mean ± standard "
                  "deviation [min, max] (seeds " + ", ".join(
                      f"{depth}: {','.join(str(r['seed']) for r in rows)}" for depth, rows in unlearned.items()) + ").", "",
                  "| model | " + " | ".join(label for _, label, _ in SPREAD) + " |",
                  "| --- |" + " --- |" * len(SPREAD)]
        for name, row in references.items():
            lines.append(f"| {name} | " + " | ".join(cell(row, key, digits) if key != "epoch_equivalents_cpu" else "–"
                                                    for key, _, digits in SPREAD) + " |")
        for depth, rows in unlearned.items():
            lines.append(f"| unlearned ({depth}) | " + " | ".join(_spread(rows, key, digits) for key, _, digits in SPREAD)
                         + " |")
        lines += ["", "Relearn runs (steps of each of the three runs; the figure is their median):", ""]
        for name, row in [*references.items(), *((f"unlearned ({d}) seed {r['seed']}", r) for d, rows in
                                                 unlearned.items() for r in rows)]:
            lines.append(f"- {name}: {row.get('relearn_runs')}")
        stages = [s for s in (original or {}).get("probe_df_stages") or {}]
        if stages:
            lines += ["", "probe-Df at every stage (seed of the first unlearned row), with 95% intervals:", "",
                      "| model | " + " | ".join(stages) + " | head input |", "| --- |" + " --- |" * (len(stages) + 1)]
            shown = [*references.items(), *((f"unlearned ({d})", rows[0]) for d, rows in unlearned.items() if rows)]
            for name, row in shown:
                cells = [with_interval(row["probe_df_stages"][s]["value"], row["probe_df_stages"][s]["interval"], 2)
                         for s in stages]
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {cell(row, 'probe_df', 2)} |")
            lines.append("")
            for depth, rows in unlearned.items():
                flags = [stage_flag({"original": original, "unlearned": r, **({"retrain": retrain} if retrain else {})})
                         for r in rows]
                lines.append(f"- unlearned ({depth}): " + "; ".join(f"seed {r['seed']}: {f['text']}" for r, f in
                                                                  zip(rows, flags) if f))
        if original is not None:
            lines += ["", "Verdicts over the seeds (how many seeds read each verdict):", ""]
            for depth, rows in unlearned.items():
                counts = {key: Counter() for key in VERDICT_COLUMNS}
                for row in rows:
                    for key in VERDICT_COLUMNS:
                        judged = column_verdict(key, row, original, retrain, MAX_TEST_DF)
                        if judged:
                            counts[key][judged["verdict"]] += 1
                lines.append(f"- unlearned ({depth}): " + "; ".join(
                    f"{VERDICT_COLUMNS[key][0]}: " + ", ".join(f"{v} {n}/{len(rows)}" for v, n in c.most_common())
                    for key, c in counts.items() if c))
            for name in ("retrain", "original"):
                if name in references:
                    judged = [column_verdict(key, references[name], original, None, MAX_TEST_DF) for key in VERDICT_COLUMNS]
                    lines.append(f"- calibration, the {name} model judged as if unlearned, no reference: "
                                 + "; ".join(f"{v['column']} {v['verdict']}" for v in judged if v))
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
