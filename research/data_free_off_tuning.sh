#!/usr/bin/env bash
# Issue 30 item 7: the data-free mode, unchanged, off the request it was tuned on (ResNet20 {3,7}):
# ResNet32 and ResNet44 over the CIFAR-10 protocol requests, the CIFAR-100 ResNet20 over the singles
# and one superclass. One thread each, resumable (--resume keeps the requests already written).
set -euo pipefail
export OMP_NUM_THREADS=1
D=${DATA:-../shared/data}
O=benchmarks/data-free
run() { zeroshot-unlearn bench --quiet --resume --methods anti_memory_data_free "$@" > /dev/null; echo "done: $*"; }
run --suite cifar100-resnet20 --data-dir $D --requests "69;51;2;40;71;41,69,81,85,89" --out $O/cifar100-resnet20.json
run --suite cifar10-resnet32 --data-dir $D --out $O/cifar10-resnet32.json
run --suite cifar10-resnet44 --data-dir $D --out $O/cifar10-resnet44.json
