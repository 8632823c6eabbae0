#!/usr/bin/env bash
# The README demo: train the quick-start CycleGAN and SPADE on the synthetic landscapes, then paint the example
# sketches (sketch -> SPADE scene -> CycleGAN painting) and print where the contact sheets are.
# Usage: scripts/demo.sh [extra infer.py overrides...]; TRAIN_ARGS="trainer.max_epochs=4" shortens both trainings.
# Logs go to W&B (offline without an API key) in each run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export WANDB_MODE=${WANDB_MODE:-offline} WANDB_SILENT=true
STAMP=$(date +%Y-%m-%d_%H-%M-%S)
CG_DIR=outputs/train/${STAMP}_demo_cyclegan
SPADE_DIR=outputs/train/${STAMP}_demo_spade

echo "== 1/3 CycleGAN quick-start (photo -> painting) -> $CG_DIR"
"$PY" train.py experiment=quickstart hydra.run.dir="$CG_DIR" ${TRAIN_ARGS:-}
echo "== 2/3 SPADE quick-start (label map -> photo) -> $SPADE_DIR"
"$PY" train.py experiment=spade_quickstart hydra.run.dir="$SPADE_DIR" ${TRAIN_ARGS:-}
echo "== 3/3 painting examples/sketches"
"$PY" infer.py input=examples/sketches progress=false \
  stage1.checkpoint="$SPADE_DIR/checkpoints/last.ckpt" \
  stage2.cyclegan.checkpoint="$CG_DIR/checkpoints/last.ckpt" \
  hydra.run.dir="outputs/infer/${STAMP}_demo" "$@"
echo "contact sheets: outputs/infer/${STAMP}_demo/<sketch>/contact_sheet.png, overview: outputs/infer/${STAMP}_demo/overview.png"
