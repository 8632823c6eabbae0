#!/usr/bin/env bash
# The README demo. First the painter (docs/paint.md): examples/sketches/wild_vegetation.png painted from the two
# example paintings (the sky and mountains from Mountains Behind Saint-Paul, the flowering field from Field with
# Poppies), when VGG weights are at hand. Then the quick-start models: the quick-start CycleGAN and SPADE trained on
# the synthetic landscapes, and the example sketches painted through them (sketch -> SPADE scene -> CycleGAN).
# Usage: scripts/demo.sh [extra infer.py overrides for the quick-start painting...]
#   TRAIN_ARGS passes overrides to both trainings (5 epochs each here); PAINT_ARGS to the painter.
# Logs go to W&B (offline without an API key) in each run folder. The neural doodle is not part of the demo (about
# half an hour on a CPU): docs/doodle.md has its command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export WANDB_MODE=${WANDB_MODE:-offline} WANDB_SILENT=true
STAMP=$(date +%Y-%m-%d_%H-%M-%S)
CG_DIR=outputs/train/${STAMP}_demo_cyclegan
SPADE_DIR=outputs/train/${STAMP}_demo_spade
PAINT_DIR=outputs/infer/${STAMP}_demo_painter

# 1/4 the painter needs VGG weights: $VGG_WEIGHTS (a local .pth, arch $VGG_ARCH, default vgg16), torchvision's VGG19
# in the torch hub cache, or the project's shared offline VGG16.
HUB_VGG19=${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints/vgg19-dcbb9e9d.pth
VGG=()
if [ -n "${VGG_WEIGHTS:-}" ]; then
  VGG=(stage2.nnst.module.vgg.weights="$VGG_WEIGHTS" stage2.nnst.module.vgg.arch="${VGG_ARCH:-vgg16}")
elif [ -f "$HUB_VGG19" ]; then
  VGG=(stage2.nnst.module.vgg.arch=vgg19)
elif [ -f ../shared/weights/vgg16_caffe_features.pth ]; then
  VGG=(stage2.nnst.module.vgg.weights=../shared/weights/vgg16_caffe_features.pth stage2.nnst.module.vgg.arch=vgg16)
fi
if [ ${#VGG[@]} -gt 0 ]; then
  echo "== 1/4 the painter: examples/sketches/wild_vegetation.png from the two paintings in examples/styles/ -> $PAINT_DIR"
  "$PY" infer.py input=examples/sketches/wild_vegetation.png infer/stage1=none 'infer/stage2=[nnst]' \
    style.paintings=[examples/styles/mountains_behind_saint_paul_1889.jpg,examples/styles/field_with_poppies_1889.jpg] \
    style.labels=[examples/styles/mountains_behind_saint_paul_1889_labels.png,examples/styles/field_with_poppies_1889_labels.png] \
    'style.weights=[{grass:0},{sky:0}]' progress=false "${VGG[@]}" hydra.run.dir="$PAINT_DIR" ${PAINT_ARGS:-}
  echo "the painting: $PAINT_DIR/wild_vegetation/nnst.png"
else
  echo "== 1/4 the painter skipped, no VGG weights: fetch them once with $PY -c 'import torchvision; torchvision.models.vgg19(weights=\"IMAGENET1K_V1\")' (online) or set VGG_WEIGHTS=<vgg16 .pth>, then re-run make demo"
fi

# half the quick-start runs' epochs: toy models either way, and the demo stays within 3 minutes on a 2-core CPU
# without native bf16 (`python train.py experiment=quickstart` trains the full 10 epochs)
SHORT="trainer.max_epochs=5"
echo "== 2/4 CycleGAN quick-start (photo -> painting) -> $CG_DIR"
"$PY" train.py experiment=quickstart $SHORT model.scheduler.n_epochs=3 model.scheduler.n_epochs_decay=2 \
  hydra.run.dir="$CG_DIR" ${TRAIN_ARGS:-}
echo "== 3/4 SPADE quick-start (label map -> photo) -> $SPADE_DIR"
"$PY" train.py experiment=spade_quickstart $SHORT hydra.run.dir="$SPADE_DIR" ${TRAIN_ARGS:-}
echo "== 4/4 painting examples/sketches with the quick-start models (toy models: flat, blurry scenes)"
"$PY" infer.py input=examples/sketches progress=false infer/stage1=spade 'infer/stage2=[cyclegan]' \
  stage1.checkpoint="$SPADE_DIR/checkpoints/last.ckpt" \
  stage2.cyclegan.checkpoint="$CG_DIR/checkpoints/last.ckpt" \
  hydra.run.dir="outputs/infer/${STAMP}_demo" "$@"
echo "contact sheets: outputs/infer/${STAMP}_demo/<sketch>/contact_sheet.png, overview: outputs/infer/${STAMP}_demo/overview.png"
if [ ${#VGG[@]} -gt 0 ]; then
  echo "the painting: $PAINT_DIR/wild_vegetation/nnst.png"
fi
