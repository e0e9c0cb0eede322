#!/usr/bin/env bash
# Issue 39 items 1-3: the audit's per-example MIA, intervals and verdicts on the three suites with a shipped
# retrain reference, at both depths (digits: output only): digits {3,7}, cifar10-resnet20 {3,7}, cifar100-resnet20 rocket (69).
# Each file holds the original, the retrain reference and the unlearned model of one depth (bench --audit full).
# Resumable (--resume); tables: python -m research.audit_table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/audit-per-example
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"
# digits has no representation-depth setting: the output depth only.
zeroshot-unlearn bench --suite digits --requests "3,7" --audit full --out "$OUT/digits-output.json" --resume --quiet > /dev/null
for depth in output representation; do
  zeroshot-unlearn bench --suite cifar10-resnet20 --data-dir "$DATA" --requests "3,7" --audit full --depth "$depth" \
    --reference "3,7:$DATA/checkpoints/resnet20-retrain-without-3-7.th" --out "$OUT/cifar10-resnet20-$depth.json" --resume --quiet > /dev/null
  zeroshot-unlearn bench --suite cifar100-resnet20 --data-dir "$DATA" --requests "69" --audit full --depth "$depth" \
    --out "$OUT/cifar100-resnet20-$depth.json" --resume --quiet > /dev/null
done
