#!/usr/bin/env bash
# One command for a bare GPU machine (one H100 or H200, no network; Python 3.12 with torch, transformers, peft and
# accelerate installed): every GPU number the project needs, in at most 8 minutes.
#
#   bash bench/gpu.sh                 OUT=DIR to choose the folder (default: a new temporary one)
#   OUT=DIR bash bench/gpu.sh --rehearse    the same script on the CPU, tiny configs, toy size (the test suite runs it)
#
# In order, each result appended to $OUT/stages.jsonl as soon as it exists and $OUT/results-gpu.json +
# $OUT/RESULTS.md rewritten after every stage (a timeout keeps what was measured): the environment check; the
# `reference` and `studio` modes of bench/bench.py at 432x768x93, rank 32, bf16 (studio compiled, falling back to
# `studio-no-compile` when compiling fails or outlasts its time); DoRA against LoRA (`studio-dora` against
# `studio-no-compile`); one 704x1280x93 generation per memory mode (full, offload) with its peak; the memory
# estimate beside every peak; and `pytest -m gpu`. Commit $OUT/results-gpu.json as bench/results-gpu.json and paste
# $OUT/RESULTS.md's GPU section into bench/RESULTS.md.
#
# diffusers and imageio-ffmpeg are not on that machine: they travel as wheels in .whl/ (git-ignored), filled
# where there is a network with (Python 3.12, x86-64 Linux):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform manylinux1_x86_64 --platform any -d .whl diffusers==0.42.1 imageio-ffmpeg==0.8.1 importlib-metadata
# (importlib-metadata is the one requirement of diffusers that such a machine's image lacks;
# `unzip -p .whl/diffusers-*.whl '*/METADATA' | grep ^Requires-Dist` lists them
# all). This script installs .whl/*.whl with --no-index when diffusers cannot be imported.
set -uo pipefail

REHEARSE=()
if [[ "${1:-}" == "--rehearse" ]]; then
  REHEARSE=(--rehearse)
fi
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$(mktemp -d -t cosmos-gpu-XXXXXX)}"
PY="${PYTHON:-python3}"
BUDGET_S="${BUDGET_S:-480}"  # the whole script; each stage gets at most what is left
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu.log"
STARTED="$(date +%s)"
cd "$REPO" || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
: >"$OUT/stages.jsonl"

say() { echo "gpu.sh: $*" | tee -a "$LOG" >&2; }

# stage LIMIT_S NAME ARGS...: one bench/gpu_bench.py stage under `timeout`, cut to the budget left; then merge.
stage() {
  local limit="$1" name="$2"
  shift 2
  local left=$((BUDGET_S - ($(date +%s) - STARTED)))
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    say "$name: skipped, the ${BUDGET_S} s budget is spent"
    return 124
  fi
  say "$name: up to ${limit} s"
  timeout --kill-after=10 "$limit" "$PY" bench/gpu_bench.py "$@" --out "$OUT" "${REHEARSE[@]}" >>"$LOG" 2>&1
  local rc=$?
  say "$name: exit $rc after $(($(date +%s) - STARTED)) s in all"
  "$PY" bench/gpu_bench.py merge --out "$OUT" --started "$STARTED" "${REHEARSE[@]}" >>"$LOG" 2>&1
  return $rc
}

if ((${#REHEARSE[@]} == 0)) && ! "$PY" -c "import diffusers, imageio_ffmpeg" 2>/dev/null; then
  say "installing .whl/*.whl (no network)"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/cosmos-gpu-site .whl/*.whl \
    >>"$LOG" 2>&1 || { say "installing the wheels failed: fill .whl/ as this script's header says"; exit 1; }
  export PYTHONPATH="$PYTHONPATH:/tmp/cosmos-gpu-site"
fi

if [[ ${#REHEARSE[@]} -gt 0 ]]; then
  TRAIN_S=120 COMPILE_S=60 GEN_S=60 TEST_S=60 STEPS=(--steps 1 --warmup 0) GEN_STEPS=(--steps 1)
else
  TRAIN_S=240 COMPILE_S=150 GEN_S=150 TEST_S=60 STEPS=(--steps 4 --warmup 2) GEN_STEPS=(--steps 2)
fi

stage 60 env env || { say "no usable device; see $LOG"; exit 1; }
# studio-no-compile: the fallback for a failed compile, and DoRA's LoRA baseline (same settings)
stage "$TRAIN_S" "reference, studio-no-compile, studio-dora" train --mode reference,studio-no-compile,studio-dora \
  "${STEPS[@]}"
stage "$COMPILE_S" studio train --mode studio "${STEPS[@]}" ||
  say "studio: compiling failed or outlasted its time; studio-no-compile stands in for it"
stage "$GEN_S" generate generate "${GEN_STEPS[@]}"

left=$((BUDGET_S - ($(date +%s) - STARTED)))
if ((left >= 10)); then
  say "pytest -m gpu: up to ${TEST_S} s"
  timeout --kill-after=10 "$((TEST_S < left ? TEST_S : left))" "$PY" -m pytest -m gpu -q -p no:cacheprovider \
    tests/test_gpu.py >"$OUT/pytest-gpu.txt" 2>&1
  rc=$?
  summary="$(tail -n 1 "$OUT/pytest-gpu.txt")"
  "$PY" -c 'import json, sys; print(json.dumps({"stage": "pytest", "rc": int(sys.argv[1]), "summary": sys.argv[2]}))' \
    "$rc" "$summary" >>"$OUT/stages.jsonl"
  say "pytest -m gpu: exit $rc: $summary"
  "$PY" bench/gpu_bench.py merge --out "$OUT" --started "$STARTED" "${REHEARSE[@]}" >>"$LOG" 2>&1
fi
say "done in $(($(date +%s) - STARTED)) s: $OUT/results-gpu.json, $OUT/RESULTS.md"
