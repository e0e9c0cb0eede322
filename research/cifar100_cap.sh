#!/usr/bin/env bash
# Issue 30: the 5,000-image rows again with the schedule's ceiling max_epoch_images 2500 (a phase epoch
# covers at most 2,500 images, as at the 2,500 budget), then the data-free mode on ResNet32 and ResNet44
# over four CIFAR-10 protocol requests. One thread each, resumable.
set -euo pipefail
export OMP_NUM_THREADS=1
D=${DATA:-../shared/data}
run() { zeroshot-unlearn bench --quiet --resume "$@" > /dev/null; echo "done: $*"; }
run --suite cifar100-resnet20 --data-dir $D --retain-budget 5000 --set max_epoch_images=2500 \
    --requests "69;51;2;40;71;41,69,81,85,89;2,11,35,46,98;0,1,2,3,4,5,6,7,8,9" \
    --out benchmarks/cifar100-resnet20/protocol-5000-cap2500.json
for depth in 32 44; do
  run --suite cifar10-resnet$depth --data-dir $D --methods anti_memory_data_free --requests "3,7;0;5;1,9" \
      --out benchmarks/data-free/cifar10-resnet$depth.json
done
