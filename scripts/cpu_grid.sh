#!/usr/bin/env bash
# The CPU-recipe smoke grid (`fmnist-cpu`: ResNet-8, 10 epochs, 2 threads a run): the 111
# records of fmnist-{rot,bg,dil}-lt@fmnist-cpu, one run after another on this machine.
#   ce, ce+drs, ce+drw, ldam+drw, bsce, ce+oracle, ce+mixup, ce+drs+remix, ce+drs+augerino,
#   ce+drs+msr on all three; ce+drs+augerino@augerino.copies=1 on rot and bg; ce+drs+git with the
#   CPU-sized generator (dim 32, batch 8, 3,000 iterations) on all three, and without GIT's delay on
#   bg and dil. 3 seeds each.
# About 75 min on 2 idle cores (measured: 54 min for the first sweep), plus about 6 min for each GIT
# generator not yet in the cache.
#
# Usage, from the project root of a clean checkout:  scripts/cpu_grid.sh OUT
# Then `tailbench submit OUT` and `make leaderboard`. Rerunning the script skips what
# is complete and resumes what was interrupted.
set -uo pipefail
OUT=${1:?usage: scripts/cpu_grid.sh OUT}
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
COMMON=(--recipe fmnist-cpu --seeds 0,1,2 --device cpu --cpus-per-run 2 --out "$OUT" --quiet)
GIT_CPU=(--hp git.dim=32 --hp git.gen_batch=8 --hp git.iters=3000)
status=0
sweep() {
  local t0; t0=$(date +%s)
  echo "== $(date +%T) sweep $*"
  "$PY" -m tailbench sweep "$@" "${COMMON[@]}" || status=1
  echo "   $(( $(date +%s) - t0 )) s; $(find "$OUT" -name done | wc -l) records in $OUT"
}
ALL=fmnist-rot-lt,fmnist-bg-lt,fmnist-dil-lt
sweep --datasets "$ALL" --methods ce,ce+drs,ce+drw,ldam+drw,bsce,ce+oracle,ce+mixup,ce+drs+remix,ce+drs+augerino,ce+drs+msr
sweep --datasets fmnist-rot-lt,fmnist-bg-lt --methods ce+drs+augerino --hp augerino.copies=1
sweep --datasets fmnist-bg-lt,fmnist-dil-lt --methods ce+drs+git "${GIT_CPU[@]}"
sweep --datasets fmnist-bg-lt,fmnist-dil-lt --methods ce+drs+git "${GIT_CPU[@]}" --hp git.delayed=false
sweep --datasets fmnist-rot-lt --methods ce+drs+git "${GIT_CPU[@]}"
exit $status
