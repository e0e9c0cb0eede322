#!/usr/bin/env bash
# Issue 39 items 2 and 4: the audit over three unlearning seeds (bench --seeds 3), with relearn checked step by
# step (median and range of three relearn runs) and probe-Df at every backbone stage, on the suites with a shipped
# retrain reference: cifar10-resnet20 {3,7} and cifar100-resnet20 rocket (69) at both depths, digits {3,7} at the
# output depth. The original and the retrain reference are audited once per file (seed 0).
# Resumable (--resume: a file keeps the seeds already run); tables: python -m research.audit_table benchmarks/audit-seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/audit-seeds
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"
common=(--audit full --seeds 3 --resume --quiet)
zeroshot-unlearn bench --suite cifar10-resnet20 --data-dir "$DATA" --requests "3,7" --depth output \
  --reference "3,7:$DATA/checkpoints/resnet20-retrain-without-3-7.th" --out "$OUT/cifar10-resnet20-output.json" "${common[@]}" > /dev/null
zeroshot-unlearn bench --suite cifar100-resnet20 --data-dir "$DATA" --requests "69" --depth output \
  --out "$OUT/cifar100-resnet20-output.json" "${common[@]}" > /dev/null
zeroshot-unlearn bench --suite digits --requests "3,7" --out "$OUT/digits-output.json" "${common[@]}" > /dev/null
zeroshot-unlearn bench --suite cifar10-resnet20 --data-dir "$DATA" --requests "3,7" --depth representation \
  --reference "3,7:$DATA/checkpoints/resnet20-retrain-without-3-7.th" --out "$OUT/cifar10-resnet20-representation.json" "${common[@]}" > /dev/null
zeroshot-unlearn bench --suite cifar100-resnet20 --data-dir "$DATA" --requests "69" --depth representation \
  --out "$OUT/cifar100-resnet20-representation.json" "${common[@]}" > /dev/null
