#!/usr/bin/env bash
# The retained-budget sweep (benchmarks/RESULTS.md, "Retained budget"): the default method on
# {0} {5} {9} {3,7} {1,9} at several retained budgets, light audit, one thread per process.
# Usage: bash research/budget_sweep.sh SUITE BUDGET... (e.g. cifar10-resnet20 200 500 1000 2500 5000)
set -euo pipefail
suite=$1; shift
data=${DATA_DIR:-../shared/data}
for budget in "$@"; do
  out=benchmarks/budget/budget-$suite-$budget.json
  args=(--suite "$suite" --requests "0;5;9;3,7;1,9" --retain-budget "$budget" --audit light --resume --out "$out" --quiet)
  [[ $suite == digits ]] || args+=(--data-dir "$data")
  OMP_NUM_THREADS=1 zeroshot-unlearn bench "${args[@]}" > /dev/null
  echo "$suite $budget done"
done
