#!/usr/bin/env bash
# The CIFAR-10 rows of benchmarks/selfcheck/ (issue 31); needs ../shared/data.
set -e
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
P=".venv/bin/python -m research.selfcheck_study --suite cifar10-resnet20 --data-dir ../shared/data --out benchmarks/selfcheck/study-cifar10-resnet20.jsonl"
$P --requests "3,7" --methods anti_memory,masked_kd,finetune,logit_mask,unsir,gradient_ascent,bad_teacher,ssd,anti_memory_no_generator,anti_memory_features,retrain_reference,anti_memory@impair0.02,anti_memory@impair0.05,anti_memory@impair0.1,anti_memory@impair0.25
$P --requests "0,1,2,3,4,5,6,7" --methods anti_memory
$P --requests "0;5;9;1,9" --methods anti_memory
$P --requests "0;5;9;3,7;1,9" --methods anti_memory --budgets 200,500,1000,5000
$P --requests "3,7" --methods anti_memory_data_free,random_label,scrub
echo ALLDONE
