#!/usr/bin/env bash
# Regenerates the tiny world's pictures from the committed base, on a CPU in a few minutes:
#   docs/images/tiny-world-compare.png  (docs/tiny-world.md: two held-out clips, every row, each row labelled
#                                        with the arm the scorer sees moving)
#   docs/images/hero.png                (the README: the first held-out clip alone)
#   docs/screenshots/evaluate.png       (the README: the studio scoring every checkpoint of that run, in headless
#                                        Chromium: needs the test dependencies, `make test-deps chromium`)
# It trains the CPU preset's adapter, then draws what `trainer evaluate` generates on the held-out split:
# frames 0, 4, 8, 12 and 16, enlarged 4x with sharp pixels; rows: the first frame, the base, the adapter, the real
# clip through the VAE, the real clip. Usage: docs/make-pictures.sh [WORK_DIR]   (PYTHON=... to pick python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} # the thread count docs/tiny-world.md's numbers were measured with
WORK=${1:-$(mktemp -d)}
$PY -m trainer train --config trainer/presets/cpu-tiny.toml --set output_dir="$WORK"
ADAPTER="$WORK/tiny-lora/adapter"
$PY -m trainer evaluate --data sample:held_out --adapter "$ADAPTER" --json \
    --sheet docs/images/tiny-world-compare.png >"$WORK/held-out-scores.json"
$PY -m trainer evaluate --data sample:held_out --adapter "$ADAPTER" --json --max-clips 1 \
    --sheet docs/images/hero.png --sheet-clips 1 >"$WORK/hero-scores.json"
$PY docs/screenshot-evaluate.py "$WORK/tiny-lora" "$WORK/studio-workspace"
echo "wrote docs/images/tiny-world-compare.png and docs/images/hero.png; scores in $WORK/held-out-scores.json"
