#!/usr/bin/env bash
# The README demo: train the quick-start CycleGAN and SPADE on the synthetic landscapes, then paint the example
# sketches (sketch -> SPADE scene -> CycleGAN painting) and print where the contact sheets are; with VGG weights,
# also paint the Wild Vegetation sketch straight from the doodle in the manner of examples/styles/ (docs/doodle.md).
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

echo "== 1/4 CycleGAN quick-start (photo -> painting) -> $CG_DIR"
"$PY" train.py experiment=quickstart hydra.run.dir="$CG_DIR" ${TRAIN_ARGS:-}
echo "== 2/4 SPADE quick-start (label map -> photo) -> $SPADE_DIR"
"$PY" train.py experiment=spade_quickstart hydra.run.dir="$SPADE_DIR" ${TRAIN_ARGS:-}
echo "== 3/4 painting examples/sketches"
"$PY" infer.py input=examples/sketches progress=false \
  stage1.checkpoint="$SPADE_DIR/checkpoints/last.ckpt" \
  stage2.cyclegan.checkpoint="$CG_DIR/checkpoints/last.ckpt" \
  hydra.run.dir="outputs/infer/${STAMP}_demo" "$@"
echo "contact sheets: outputs/infer/${STAMP}_demo/<sketch>/contact_sheet.png, overview: outputs/infer/${STAMP}_demo/overview.png"

# 4/4 the doodle needs VGG weights: $VGG_WEIGHTS (a local .pth, arch $VGG_ARCH, default vgg19), torchvision's VGG19 in
# the torch hub cache, or the project's shared offline VGG16.
HUB_VGG19=${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints/vgg19-dcbb9e9d.pth
if [ -n "${VGG_WEIGHTS:-}" ]; then
  VGG=(stage2.doodle.module.vgg.weights="$VGG_WEIGHTS" stage2.doodle.module.vgg.arch="${VGG_ARCH:-vgg19}")
elif [ -f "$HUB_VGG19" ]; then
  VGG=()
elif [ -f ../shared/weights/vgg16_caffe_features.pth ]; then
  VGG=(stage2.doodle.module.vgg.weights=../shared/weights/vgg16_caffe_features.pth stage2.doodle.module.vgg.arch=vgg16)
else
  echo "== 4/4 doodle skipped: no VGG weights. Fetch torchvision's VGG19 once (online):"
  echo "     $PY -c 'import torchvision; torchvision.models.vgg19(weights=\"IMAGENET1K_V1\")'"
  echo "   or point VGG_WEIGHTS at a local vgg19 .pth (VGG_ARCH=vgg16 for a VGG16), then re-run scripts/demo.sh"
  exit 0
fi
# The demo's doodle takes 50 L-BFGS steps per pyramid level (a few minutes on 2 cores); the stage's own 100 per level
# (conf/infer/stage2/doodle.yaml, the docs/doodle.md picture) take about twice as long: DOODLE_ARGS=" " runs those.
DOODLE_ARGS=${DOODLE_ARGS:-"stage2.doodle.pyramid=[{edge:0.25,steps:50},{edge:0.5,steps:50},{edge:1.0,steps:50}]"}
echo "== 4/4 doodle: examples/sketches/wild_vegetation.png in the manner of Field with Poppies (DOODLE_ARGS=... to change the stage)"
"$PY" infer.py input=examples/sketches/wild_vegetation.png infer/stage1=none 'infer/stage2=[doodle]' \
  style.painting=examples/styles/field_with_poppies_1889.jpg \
  style.labels=examples/styles/field_with_poppies_1889_labels.png \
  "${VGG[@]}" hydra.run.dir="outputs/infer/${STAMP}_demo_doodle" $DOODLE_ARGS
echo "doodle: outputs/infer/${STAMP}_demo_doodle/wild_vegetation/doodle.png (contact_sheet.png beside it)"
