#!/usr/bin/env bash
# Issue 37 item 2: peak memory with 8,000 retained 224-px images against 800, the same number of steps.
# The subset's 800 training images linked ten times (different names) stand in for 8,000 images.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}/imagenet-subset
WORK=${WORK:-/tmp/imagenet-memory}
OUT=benchmarks/imagenet-efficientnet_lite0
rm -rf "$WORK" && mkdir -p "$WORK/x10/train" "$OUT"
for dir in "$DATA"/train/*/; do
  wnid=$(basename "$dir"); mkdir -p "$WORK/x10/train/$wnid"
  for copy in 0 1 2 3 4 5 6 7 8 9; do
    for f in "$dir"*; do ln -s "$(realpath "$f")" "$WORK/x10/train/$wnid/${copy}_$(basename "$f")"; done
  done
done
ln -s "$(realpath "$DATA/test")" "$WORK/x10/test"
for budget in 800 8000; do
  /usr/bin/time -v zeroshot-unlearn forget --model tf_efficientnet_lite0 --classes tench --retain-data "$WORK/x10" \
    --retain-budget "$budget" --out "$WORK/out-$budget" --overwrite --quiet 2> "$OUT/memory-time-$budget.txt" \
    | tee "$OUT/memory-forget-$budget.txt"
  cp "$WORK/out-$budget/metrics.json" "$OUT/memory-metrics-$budget.json"
done
