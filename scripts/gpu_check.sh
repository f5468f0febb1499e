#!/usr/bin/env bash
# The GPU checks of the harness in one go, about 5 minutes on one H100 or H200:
#   1. scripts/bench_harness.py on ResNet-20 / 1x28x28 and ResNet-32 / 3x32x32 (bare eager step,
#      bare graph step, harness epochs, evaluation batch sizes, layouts, cost of determinism);
#   2. one full `fmnist` recipe run (ce on fmnist-rot-lt: ResNet-20, 50 epochs, eKLD 40 x 100);
#   3. 200 epochs of ResNet-32 on synthetic-lt with CIFAR-10-LT's sizes (the cifar-lt recipe);
#   4. 12 short runs through `tailbench sweep --jobs 1` and `--jobs N`: throughput, and whether
#      running them side by side changes a single byte of their records;
#   5. determinism: the same run twice (ce+drs, and ce+oracle whose step draws random nuisances).
# Every figure goes to OUT/gpu_check.json (scripts/gpu_check_summary.py); logs to OUT/*.log.
#
# Usage, from the project root:  scripts/gpu_check.sh OUT [JOBS]
# No installation is needed: the tree runs from PYTHONPATH with the machine's own torch. Without
# internet, Fashion-MNIST must travel with the tree (see README, "Measuring on a GPU"): the files
# are looked for in $TAILBENCH_DATA (default ./.data). A copy of the tree without .git must name
# its commit: TAILBENCH_COMMIT=<sha> scripts/gpu_check.sh OUT
# A smoke test of the script itself on a CPU: DEVICE=cpu SMOKE="--epochs 1 --ekld-transforms 2" scripts/gpu_check.sh OUT 2
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUT [JOBS]}
JOBS=${2:-4}
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TAILBENCH_DATA=${TAILBENCH_DATA:-$PWD/.data}
export TAILBENCH_CACHE=${TAILBENCH_CACHE:-$OUT/cache}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
read -r -a SMOKE <<< "${SMOKE:-}"  # extra run options that shrink every run (smoke tests only)
tb() { "$PY" -m tailbench "$@"; }

STEPS="$OUT/steps.tsv"
: > "$STEPS"
step() {  # step NAME COMMAND...: run it, log it, record its exit code and seconds
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\t%s\t%s\n' "$name" "$rc" "$ms" >> "$STEPS"
  echo "   exit $rc after $((ms / 1000)) s"
  [ "$rc" = 0 ] || tail -n 5 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1

BENCH_SMOKE=()
[ -n "${SMOKE:-}" ] && BENCH_SMOKE=(--steps 3 --epochs 2 --dataset-opt n_max=100 --dataset-opt test_per_class=50)
step bench_resnet20 "$PY" scripts/bench_harness.py --device "$DEVICE" --model cifar_resnet20 --shape 1,28,28 --json "$OUT/bench_resnet20.json" "${BENCH_SMOKE[@]}"
step bench_resnet32 "$PY" scripts/bench_harness.py --device "$DEVICE" --model cifar_resnet32 --shape 3,32,32 --json "$OUT/bench_resnet32.json" "${BENCH_SMOKE[@]}"
step fmnist_full tb run --dataset fmnist-rot-lt --method ce --recipe fmnist --device "$DEVICE" --out "$OUT/check" --quiet "${SMOKE[@]}"
step synthetic_200 tb run --dataset synthetic-lt --method ce --device "$DEVICE" --out "$OUT/check" --quiet "${SMOKE[@]}"

SHORT=(--datasets fmnist-bg-lt,fmnist-dil-lt --methods ce,ce+drs --seeds 0,1,2 --epochs 5 --device "$DEVICE" --quiet "${SMOKE[@]}")
step jobs_1 tb sweep "${SHORT[@]}" --jobs 1 --out "$OUT/jobs-1"
step "jobs_$JOBS" tb sweep "${SHORT[@]}" --jobs "$JOBS" --out "$OUT/jobs-$JOBS"

for spec in ce+drs ce+oracle; do
  for copy in a b; do
    step "determinism_${spec}_$copy" tb run --dataset fmnist-bg-lt --method "$spec" --epochs 10 --seed 0 --device "$DEVICE" --out "$OUT/det-$copy" --quiet "${SMOKE[@]}"
  done
done

"$PY" scripts/gpu_check_summary.py "$OUT" "$JOBS"
