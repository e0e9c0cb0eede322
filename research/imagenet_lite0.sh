#!/usr/bin/env bash
# Issue 37 item 4: the imagenet-efficientnet_lite0 suites (both retained settings), then the same requests
# with the impair cut to 2% of its steps (the self-check must fail those). Resumable (--resume).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/imagenet-efficientnet_lite0
DATA=${DATA:-../shared/data}
for suite in imagenet-efficientnet_lite0 imagenet-efficientnet_lite0-nette; do
  zeroshot-unlearn bench --suite "$suite" --data-dir "$DATA" --out "$OUT/$suite.json" --resume --quiet
done
# 2% of the impair: impair.epochs 10 -> 0.2 (4 of 196 steps), the repair as it is.
zeroshot-unlearn bench --suite imagenet-efficientnet_lite0 --data-dir "$DATA" --set impair.epochs=0.2 \
  --out "$OUT/impair-2pct.json" --resume --quiet
