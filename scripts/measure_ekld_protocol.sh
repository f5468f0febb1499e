#!/usr/bin/env bash
# How much the eKLD protocol moves the numbers, measured on ONE trained network per method:
# `ce` and `ce+drs+git` (CPU-sized generator) on fmnist-bg-lt, paper recipe, seed 0, each with the
# prediction-time part `posthoc_la` at tau = 0 (which adjusts nothing: the records' numbers are
# the plain method's, bit for bit), so that the network is a shared stage-1 network
# (benchmarks/stages.py): trained once, then evaluated under protocol `clean` and again under
# `drawn`. Two records of one network, differing only in x, the start image of each eKLD pair.
# Measured time (2026-12-04, 2 cores, beside the reference grid): about 1 h of the machine when the
# GIT generator is not yet cached.
#
# Usage, from the project root of a clean checkout:  nice -n 19 scripts/measure_ekld_protocol.sh OUT
# Prints the comparison and writes OUT/ekld_protocol.json; the records stay in OUT/results (they
# are a measurement, not leaderboard entries).
set -uo pipefail
OUT=${1:?usage: scripts/measure_ekld_protocol.sh OUT}
cd "$(dirname "$0")/.." || exit 2
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export TAILBENCH_CACHE=${TAILBENCH_CACHE:-$OUT/cache} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# DATASET, RECIPE, GIT_ITERS and EXTRA (e.g. "--epochs 2") are for a quick check of the script itself.
COMMON=(--datasets "${DATASET:-fmnist-bg-lt}" --seeds 0 --recipe "${RECIPE:-fmnist}" --device cpu --out "$OUT/results" --quiet
        --jobs 1 --cpus-per-run 1 --hp posthoc_la.tau=0 ${EXTRA:-})
GIT=(--hp git.dim=32 --hp git.gen_batch=8 --hp "git.iters=${GIT_ITERS:-3000}")  # the grid's CPU-sized generator
status=0
measure() {  # measure METHOD [HP...]: clean, then drawn (which reuses the clean run's stage-1 network)
  local method=$1; shift
  for protocol in clean drawn; do
    "$PY" -m tailbench sweep --methods "$method" --ekld-protocol "$protocol" "$@" "${COMMON[@]}" >> "$OUT/measure-$method.log" 2>&1 || return 1
  done
}
measure ce+posthoc_la & ce_job=$!
measure ce+drs+git+posthoc_la "${GIT[@]}" & git_job=$!
wait $ce_job || status=1
wait $git_job || status=1
"$PY" - "$OUT" <<'EOF' || status=1
import json
import sys
from pathlib import Path

from tailbench.results.records import iter_runs

out = Path(sys.argv[1])
runs = {(r.record.recipe.ekld_protocol, r.record.method.spec): r for r in iter_runs(out / "results")}
keys = ["ekld_bg", "head_ekld_bg", "tail_ekld_bg", "consistency_bg", "spearman_ekld_count_bg", "balanced_accuracy"]
rows = []
print("| method | network (stage-1 sha256) | " + " | ".join(f"{k}: clean / drawn" for k in keys) + " |")
print("|---|---|" + "---|" * len(keys))
for spec in ("ce+posthoc_la", "ce+drs+git+posthoc_la"):
    clean, drawn = runs.get(("clean", spec)), runs.get(("drawn", spec))
    if clean is None or drawn is None:
        print(f"{spec}: not both protocols yet")
        continue
    same = clean.record.stages.representation.sha256 == drawn.record.stages.representation.sha256
    row = {"method": spec.removesuffix("+posthoc_la"), "same_network": same,
           "stage1_sha256": clean.record.stages.representation.sha256,
           **{k: {"clean": clean.summary.get(k), "drawn": drawn.summary.get(k)} for k in keys}}
    rows.append(row)
    cells = " | ".join(f"{row[k]['clean']:.4f} / {row[k]['drawn']:.4f}" for k in keys)
    print(f"| `{row['method']}` | {row['stage1_sha256'][:12]}{'' if same else ' (NOT the same network)'} | {cells} |")
(out / "ekld_protocol.json").write_text(json.dumps(rows, indent=2) + "\n")
EOF
exit $status
