#!/usr/bin/env bash
# Issue 30 item 5: the masked teacher at 100 classes, measured on its own. The same requests as
# protocol-2500.json (rocket, vehicles_2, ten classes; 2,500 retained images, seed 0) with the teacher's
# distillation on retained batches turned off in both phases (labels only); the anti-memories keep
# their masked-teacher target, which is the teacher's other use. One thread, resumable.
set -euo pipefail
export OMP_NUM_THREADS=1
D=${DATA:-../shared/data}
zeroshot-unlearn bench --quiet --resume --suite cifar100-resnet20 --data-dir $D --retain-budget 2500 \
    --requests "69;41,69,81,85,89;0,1,2,3,4,5,6,7,8,9" --set impair.distill_weight=0 --set repair.distill_weight=0 \
    --out benchmarks/cifar100-resnet20/no-teacher-distillation-2500.json > /dev/null
