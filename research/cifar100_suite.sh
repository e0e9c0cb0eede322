#!/usr/bin/env bash
# Issue 30's CIFAR-100 measurements, one thread each, one after the other (resumable: --resume keeps
# the requests already written). Run from the repository root with ../shared beside it.
set -euo pipefail
export OMP_NUM_THREADS=1
D=${DATA:-../shared/data}
B=benchmarks/cifar100-resnet20
M=benchmarks/many-classes
run() { zeroshot-unlearn bench --quiet --resume "$@" > /dev/null; echo "done: $*"; }
# The suite's ten requests at both budgets (PROTOCOL.md).
run --suite cifar100-resnet20 --data-dir $D --retain-budget 2500 --out $B/protocol-2500.json
# Most of a 10-class model: 8 of the 10 CIFAR-10 classes (issue 30 item 4).
run --suite cifar10-resnet20 --data-dir $D --requests "0,1,2,3,4,5,6,7" --out $M/cifar10-resnet20-8of10.json
run --suite cifar100-resnet20 --data-dir $D --retain-budget 5000 --out $B/protocol-5000.json
# The timm model: the singles and one superclass.
run --suite cifar100-resnet10t --data-dir $D --requests "69;51;2;40;71;41,69,81,85,89" --out benchmarks/cifar100-resnet10t/singles-superclass-2500.json
# The full audit of rocket beside its retrain reference, both depths.
run --suite cifar100-resnet20 --data-dir $D --requests 69 --methods anti_memory retrain --audit full --out $B/audit-rocket-output.json
run --suite cifar100-resnet20 --data-dir $D --requests 69 --methods anti_memory --audit full --depth representation --out $B/audit-rocket-representation.json
