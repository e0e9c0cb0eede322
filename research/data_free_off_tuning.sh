#!/usr/bin/env bash
# Issue 30 item 7: the data-free mode, unchanged, off the request it was tuned on (ResNet20 {3,7}),
# on ResNet32 and ResNet44 over four CIFAR-10 protocol requests. One thread each, resumable.
# (The CIFAR-100 rows are not run: data-free fits its generator for all 100 classes, 50 times the
# steps of a 2-class request; one rocket request was still fitting after 13 min of CPU.)
set -euo pipefail
export OMP_NUM_THREADS=1
D=${DATA:-../shared/data}
for depth in 32 44; do
  zeroshot-unlearn bench --quiet --resume --suite cifar10-resnet$depth --data-dir $D --methods anti_memory_data_free \
      --requests "3,7;0;5;1,9" --out benchmarks/data-free/cifar10-resnet$depth.json > /dev/null
done
