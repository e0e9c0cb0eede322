"""The tables of docs/audit.md ("Per-example membership inference, intervals and verdicts") from the files
of benchmarks/audit-per-example/ (issue 39; `bash research/audit_per_example.sh` writes them).

    python -m research.audit_table            # prints the markdown
"""

from __future__ import annotations

import json
from pathlib import Path

from zeroshot_unlearn.audit.intervals import with_interval
from zeroshot_unlearn.audit.verdicts import VERDICT_COLUMNS, column_verdict

FOLDER = Path("benchmarks/audit-per-example")
SUITES = (("digits", "digits {3,7}"), ("cifar10-resnet20", "cifar10-resnet20 {3,7}"),
          ("cifar100-resnet20", "cifar100-resnet20 rocket (69)"))
MAX_TEST_DF = 2.5  # the self-check's default allowance, the verdicts' Df threshold without a reference


def cell(row: dict, key: str, digits: int) -> str:
    value = row.get(key)
    return "–" if value is None else with_interval(value, (row.get("intervals") or {}).get(key), digits)


def _rows(suite: str) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for depth in ("output", "representation"):
        path = FOLDER / f"{suite}-{depth}.json"
        if not path.is_file():
            continue
        for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
            name = row["method"] if row["method"] in ("original", "retrain") else f"unlearned ({depth})"
            if name in dict(out):
                continue  # the references are in both files: the first is shown
            out.append((name, row))
    return out


def main() -> None:
    lines = []
    for suite, title in SUITES:
        rows = _rows(suite)
        if not rows:
            continue
        by_name = dict(rows)
        lines += [f"**{title}**", "",
                  "| model | Df | MIA-forget AUC | per-example MIA AUC | TPR@1% | TPR@0.1% | FPR at calibrated 1% | "
                  "probe-Df | rebound Df | relearn steps |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, row in rows:
            lines.append(f"| {name} | {cell(row, 'df', 2)} | {cell(row, 'mia_forget_auc', 3)} | "
                         f"{cell(row, 'qmia_auc', 3)} | {cell(row, 'qmia_tpr1', 3)} | {cell(row, 'qmia_tpr01', 3)} | "
                         f"{cell(row, 'qmia_calibrated_fpr', 3)} | {cell(row, 'probe_df', 2)} | "
                         f"{cell(row, 'rebound_df', 2)} | {row.get('relearn_steps', '–')} |")
        lines.append("")
        original, retrain = by_name.get("original"), by_name.get("retrain")
        for name, row in rows:
            if not name.startswith("unlearned") or original is None:
                continue
            judged = [column_verdict(key, row, original, retrain, MAX_TEST_DF) for key in VERDICT_COLUMNS]
            lines += [f"- {name}: " + "; ".join(f"{v['headline']} → **{v['verdict']}**" for v in judged if v)]
        for name in ("retrain", "original"):
            if name in by_name and original is not None:
                judged = [column_verdict(key, by_name[name], original, None, MAX_TEST_DF) for key in VERDICT_COLUMNS]
                lines += [f"- calibration, the {name} model judged as if unlearned, no reference: "
                          + "; ".join(f"{v['column']} {v['verdict']}" for v in judged if v)]
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
