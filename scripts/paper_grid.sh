#!/usr/bin/env bash
# The paper-recipe grid (Zhou et al.'s K49-LT recipe, `fmnist`: ResNet-20, 50 epochs) on one GPU:
# fmnist-{rot,bg,dil}-lt x ce, ce+drs, ce+drw, ldam+drw, bsce, ce+drs+augerino, ce+oracle,
# ce+drs+git@git.iters=3000 x seeds 0, 1, 2, plus ce+drs+git with the paper-sized generator
# (10,000 iterations) on bg and dil. Runs in tiers, most telling first, so that a grid cut short
# still holds whole comparisons: bg/dil baselines and oracle, then GIT, then the rest.
#
# Usage, from the project root:  scripts/paper_grid.sh OUT [JOBS]
# Records land in OUT/results (check them with `tailbench submit OUT/results`), generators in
# $TAILBENCH_CACHE (default OUT/cache); rerunning the script skips what is complete and resumes
# the generators from their checkpoints. Like scripts/gpu_check.sh it needs no installation.
set -uo pipefail
OUT=${1:?usage: scripts/paper_grid.sh OUT [JOBS]}
JOBS=${2:-6}
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TAILBENCH_DATA=${TAILBENCH_DATA:-$PWD/.data}
export TAILBENCH_CACHE=${TAILBENCH_CACHE:-$OUT/cache}
PY=${PYTHON:-python3}
tb() { "$PY" -m tailbench "$@"; }
LONG=${GEN_LONG:-10000}   # the paper's generator iterations
SHORT=${GEN_SHORT:-3000}  # the grid's ce+drs+git@git.iters=3000
COMMON=(--seeds 0,1,2 --device cuda --out "$OUT/results" --jobs "$JOBS" --quiet)
tier() {  # tier NAME SWEEP-ARGS...
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== $(date +%T) tier $name: $*"
  tb sweep "$@" "${COMMON[@]}" > "$OUT/tier-$name.log" 2>&1
  echo "   exit $? after $(( $(date +%s) - t0 )) s; $(find "$OUT/results" -name done | wc -l) records so far"
}
generator_ready() {  # generator_ready DATASET ITERS: is the finished generator in the cache?
  "$PY" - "$@" <<'EOF'
import sys
from pathlib import Path
from tailbench.datasets import get_dataset
from tailbench.generative import cache
from tailbench.generative.model import GeneratorConfig
dataset, iters = sys.argv[1], int(sys.argv[2])
manifest, _ = get_dataset(dataset).manifest()
config = GeneratorConfig().with_options({"iters": str(iters)})
sys.exit(0 if (cache.entry_dir(cache.cache_root(), dataset, manifest.sha256, config, 0) / cache.FINAL).is_file() else 1)
EOF
}
wait_for_generator() {
  until generator_ready "$1" "$2"; do sleep 5; done
}

# The generators train beside the classifiers: the paper-sized one (10,000 iterations) keeps the
# 3,000-iteration one it passes through, which the grid's ce+drs+git entry uses.
for d in bg dil; do
  OMP_NUM_THREADS=2 tb generator train --dataset "fmnist-$d-lt" --device cuda --iters "$LONG" --keep-at "$SHORT" --quiet > "$OUT/generator-$d.log" 2>&1 &
done
OMP_NUM_THREADS=2 tb generator train --dataset fmnist-rot-lt --device cuda --iters "$SHORT" --quiet > "$OUT/generator-rot.log" 2>&1 &

tier A --datasets fmnist-bg-lt,fmnist-dil-lt --methods ce+drs,ce+oracle,ce
for d in bg dil; do wait_for_generator "fmnist-$d-lt" "$SHORT"; done
tier B --datasets fmnist-bg-lt,fmnist-dil-lt --methods ce+drs+git --hp "git.iters=$SHORT"
tier C --datasets fmnist-rot-lt --methods ce,ce+drs,ce+oracle
wait_for_generator fmnist-rot-lt "$SHORT"
tier D --datasets fmnist-rot-lt --methods ce+drs+git --hp "git.iters=$SHORT"
tier E --datasets fmnist-rot-lt,fmnist-bg-lt,fmnist-dil-lt --methods ce+drw,bsce,ldam+drw
tier F --datasets fmnist-rot-lt,fmnist-bg-lt,fmnist-dil-lt --methods ce+drs+augerino
for d in bg dil; do wait_for_generator "fmnist-$d-lt" "$LONG"; done
tier G --datasets fmnist-bg-lt,fmnist-dil-lt --methods ce+drs+git
wait
echo "== $(date +%T) grid done: $(find "$OUT/results" -name done | wc -l) records"
