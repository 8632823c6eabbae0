#!/usr/bin/env bash
# The GPU check: every training path the project has, a few steps each on one GPU, each asserted; then the CycleGAN
# benchmark at 256 px in three precisions. Stops at the first failure (non-zero exit, the failing check's log on
# stderr); `$OUT/summary.md` has one row per check either way. About 6 minutes on one H100 (docs/performance.md).
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine (OUT=... or --out DIR for the results)
#   bash benchmarks/gpu_check.sh --accelerator cpu    # the dry run: tiny sizes, fp32, ~2 min on 2 cores;
#                                                     # tests/test_gpu_check.py runs it, so the script cannot rot
#
# Checks (gpu: fp16 `16-mixed`; cpu: `32-true`, tiny networks, the `eager` compile backend):
#   cyclegan          quick-start 2 epochs, then resumed for a 3rd: losses finite, weights finite and changed,
#                     the fp16 loss scale printed and >= 1 (not stalled)
#   cyclegan_ema_compile   the same with model.ema_decay=0.999 model.compile=true: averages checkpointed, no
#                     network fell back to eager (the recompile-limit warning)
#   spade             quick-start with the VGG19 perceptual loss (random weights: no download), 20 steps
#   pix2pix           quick-start, 20 steps, sample grids in the paper's test protocol
#   nst               nst_quickstart trainer=gpu, 3 steps: the result written, losses finite
#   painter           experiment=nnst at 512 px, 3 steps
#   benchmark         benchmarks/cyclegan.py at 256 px, 32-true / bf16-mixed / 16-mixed, plain loop and project
#
# The GPU machine has torch but no network: put hydra-core, omegaconf, lightning, torchmetrics (and their pure-Python
# dependencies) in .gpu_pkgs/ (`pip install --target .gpu_pkgs ...`); it goes first on PYTHONPATH.
set -euo pipefail

ACCELERATOR=gpu
OUT=${OUT:-/tmp/gpu_check}
while [[ $# -gt 0 ]]; do
  case $1 in
    --accelerator) ACCELERATOR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--accelerator gpu|cpu] [--out DIR]" >&2; exit 2 ;;
  esac
done
[[ $ACCELERATOR == gpu || $ACCELERATOR == cpu ]] || { echo "--accelerator must be gpu or cpu" >&2; exit 2; }

cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD/.gpu_pkgs:$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}
export WANDB_MODE=disabled PYTHONWARNINGS=ignore HYDRA_FULL_ERROR=1
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md

if [[ $ACCELERATOR == gpu ]]; then
  TRAINER=(trainer=gpu trainer.precision=16-mixed)
  CYCLEGAN=()                                    # the quick-start's own sizes: 64 px, 64 images, batch 4
  SPADE=(trainer.max_steps=20)
  PIX2PIX=(trainer.max_steps=20)
  COMPILE=(model.compile=true)                   # inductor
  PAINTER_EDGE=512
  BENCH=(--sizes 256 --precisions 32-true bf16-mixed 16-mixed --variants base --plain-variants base --steps 5 --warmup 2)
else
  TRAINER=(trainer=cpu trainer.precision=32-true)
  TINY=(data.image_size=32 data.num_train=4 data.num_val=2 data.batch_size=2 data.num_workers=0)
  CYCLEGAN=("${TINY[@]}" model.G_AB.ngf=8 model.G_AB.n_blocks=1 model.D_A.ndf=8)
  SPADE=("${TINY[@]}" model.G.ngf=8 model.G.spade_hidden=16 model.D.ndf=8 trainer.max_steps=4)
  PIX2PIX=("${TINY[@]}" model.G.ngf=8 model.G.num_downs=5 model.D.ndf=8 trainer.max_steps=4)
  COMPILE=(model.compile=true model.compile_backend=eager)  # dynamo without codegen: the plumbing, in seconds
  PAINTER_EDGE=64
  BENCH=(--sizes 32 --precisions 32-true --variants base --plain-variants base --steps 1 --warmup 0 --threads 1)
fi
COMMON=(logger=csv trainer.log_every_n_steps=1 callbacks.progress_bar=null print_config=false)

row() { printf '| %s | %s | %s | %s |\n' "$@" >> "$SUMMARY"; }

# check NAME FUNCTION...: runs the function in a subshell with errexit (its first failing command ends it), output
# in $OUT/NAME.log; its last `OK: ...` line is the summary note. A failure ends the whole script.
check() {
  local name=$1 start=$SECONDS status note
  shift
  echo "== $name"
  set +e
  ( set -euo pipefail; "$@" ) > "$OUT/$name.log" 2>&1
  status=$?
  set -e
  note=$(grep -E '^(OK|SKIPPED): ' "$OUT/$name.log" | tail -1 || true)
  if [[ $status -ne 0 ]]; then
    row "$name" FAILED "$((SECONDS - start))" "exit $status, see $name.log"
    tail -n 40 "$OUT/$name.log" >&2
    echo "FAILED: $name (exit $status after $((SECONDS - start)) s); log: $OUT/$name.log; summary: $SUMMARY" >&2
    exit 1
  fi
  row "$name" "${note%%:*}" "$((SECONDS - start))" "${note#*: }"
  echo "   $note ($((SECONDS - start)) s)"
}

train() { "$PY" train.py "$@"; }

# verify RUN [--steps N] [--first CKPT] [--ema] [--scale] [--no-eager-fallback] [--files GLOB...]: what a finished run
# must show; prints one `OK: ...` line.
verify() {
  "$PY" - "$@" <<'PY'
import argparse, csv, math, sys
from pathlib import Path

import torch

p = argparse.ArgumentParser()
p.add_argument("run", type=Path)
p.add_argument("--steps", type=int)
p.add_argument("--first", type=Path, help="the checkpoint this run resumed from")
p.add_argument("--ema", action="store_true")
p.add_argument("--scale", action="store_true", help="fp16: the loss scale must be logged and >= 1")
p.add_argument("--no-eager-fallback", action="store_true")
p.add_argument("--files", nargs="*", default=[])
a = p.parse_args()
notes = []

ckpt = torch.load(a.run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
weights = {k: v for k, v in ckpt["state_dict"].items() if v.is_floating_point()}
bad = [k for k, v in weights.items() if not torch.isfinite(v).all()]
assert weights and not bad, f"non-finite weights: {bad[:5]}"
step = ckpt["global_step"]
if a.steps is not None:
    assert step == a.steps, f"global_step {step}, expected {a.steps}"
notes.append(f"step {step}")
if a.first is not None:
    first = torch.load(a.first, weights_only=True, map_location="cpu")
    assert step > first["global_step"], f"resumed run did not train: step {step} <= {first['global_step']}"
    changed = [k for k, v in first["state_dict"].items() if v.is_floating_point() and not torch.equal(v, weights[k])]
    assert changed, "the resumed run left every weight as it was"
    notes.append(f"resumed from step {first['global_step']}, {len(changed)} tensors changed")
if a.ema:
    averages = [k for k in weights if k.startswith("ema.")]
    assert averages, "no weight averages (ema.*) in the checkpoint"
    notes.append(f"{len(averages)} EMA tensors")

rows = list(csv.DictReader(open(a.run / "csv" / "metrics.csv")))
losses = [{k: float(v) for k, v in r.items() if k.startswith("train/") and v} for r in rows]
losses = [r for r in losses if r]
assert losses, "no training losses logged"
nonfinite = [(i, k) for i, r in enumerate(losses) for k, v in r.items() if not math.isfinite(v)]
assert not nonfinite, f"non-finite losses: {nonfinite[:5]}"
notes.append(f"{len(losses)} logged steps, losses finite")
scales = [float(r["amp/loss_scale"]) for r in rows if r.get("amp/loss_scale")]
if a.scale:
    assert scales, "no amp/loss_scale logged under 16-mixed"
    assert scales[-1] >= 1, f"fp16 loss scale {scales[-1]:g}: gradients overflow (stalled)"
if scales:
    notes.append(f"loss scale {scales[-1]:g} (min {min(scales):g})")
if a.no_eager_fallback:
    log = (a.run / "train.log").read_text()
    assert "runs eagerly from now on" not in log, "a compiled network fell back to eager (see train.log)"
    notes.append("no eager fallback")
for pattern in a.files:
    assert list(a.run.glob(pattern)), f"no {pattern} in {a.run}"
print("OK: " + "; ".join(notes))
PY
}

# ------------------------------------------------------------------------------------------------------- checks
environment() {
  if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
  "$PY" - "$ACCELERATOR" <<'PY'
import sys

import lightning
import torch

gpu = sys.argv[1] == "gpu"
assert not gpu or torch.cuda.is_available(), "--accelerator gpu but torch sees no CUDA device"
device = torch.cuda.get_device_name() if gpu else f"cpu ({torch.backends.cpu.get_cpu_capability()})"
print(f"OK: {device}; torch {torch.__version__}, lightning {lightning.__version__}")
PY
}

cyclegan_and_resume() {  # NAME EXTRA...: 2 epochs, a copy of its last.ckpt, then a 3rd epoch resumed from it
  local name=$1 scale=() ema=() fallback=()
  shift
  [[ $ACCELERATOR == gpu ]] && scale=(--scale)
  [[ " $* " == *" model.ema_decay="* ]] && ema=(--ema)
  [[ " $* " == *" model.compile=true "* ]] && fallback=(--no-eager-fallback)
  local run=$OUT/$name
  train experiment=quickstart "${TRAINER[@]}" "${CYCLEGAN[@]}" "${COMMON[@]}" "$@" trainer.max_epochs=2 \
    hydra.run.dir="$run/first"
  cp "$run/first/checkpoints/last.ckpt" "$run/first.ckpt"
  verify "$run/first" "${scale[@]}" "${ema[@]}" "${fallback[@]}"
  train experiment=quickstart "${TRAINER[@]}" "${CYCLEGAN[@]}" "${COMMON[@]}" "$@" trainer.max_epochs=3 \
    ckpt_path="$run/first.ckpt" hydra.run.dir="$run/resumed"
  verify "$run/resumed" --first "$run/first.ckpt" "${scale[@]}" "${ema[@]}" "${fallback[@]}"
}

spade() {
  local scale=()
  [[ $ACCELERATOR == gpu ]] && scale=(--scale)
  train experiment=spade_quickstart "${TRAINER[@]}" "${SPADE[@]}" "${COMMON[@]}" model.lambda_vgg=10 \
    model.vgg.weights=random hydra.run.dir="$OUT/spade/run"
  verify "$OUT/spade/run" "${scale[@]}" --files "samples/final_*.png"
}

pix2pix() {
  local scale=()
  [[ $ACCELERATOR == gpu ]] && scale=(--scale)
  train experiment=pix2pix_quickstart "${TRAINER[@]}" "${PIX2PIX[@]}" "${COMMON[@]}" hydra.run.dir="$OUT/pix2pix/run"
  verify "$OUT/pix2pix/run" "${scale[@]}" --files "samples/final_*.png"
}

nst() {  # the quick-start's precision (32-true; NST refuses 16-mixed)
  train experiment=nst_quickstart "trainer=${TRAINER[0]#trainer=}" trainer.max_steps=3 "${COMMON[@]}" \
    hydra.run.dir="$OUT/nst/run"
  verify "$OUT/nst/run" --steps 3 --files nst/final.png nst/final.yaml
}

painter() {
  train experiment=nnst "trainer=${TRAINER[0]#trainer=}" model.vgg.weights=random \
    "data.pyramid=[{edge:$PAINTER_EDGE,steps:3}]" trainer.max_steps=3 "${COMMON[@]}" hydra.run.dir="$OUT/painter/run"
  verify "$OUT/painter/run" --steps 3 --files painter/final.png painter/final.yaml
}

benchmark() {
  "$PY" benchmarks/cyclegan.py "${BENCH[@]}" --accelerator "$ACCELERATOR" --json "$OUT/benchmark.json" \
    | tee "$OUT/benchmark.txt"
  "$PY" - "$OUT/benchmark.json" "${BENCH[@]}" <<'PY'
import json, sys

rows = json.load(open(sys.argv[1]))
args = sys.argv[2:]
precisions = args[args.index("--precisions") + 1 : args.index("--variants")]
expected = 2 * len(precisions)  # plain + project, one variant each
assert len(rows) == expected, f"{len(rows)} benchmark rows, expected {expected}"
fastest = min(rows, key=lambda r: r["s_per_iter"])
print(f"OK: {len(rows)} rows; fastest {fastest['loop']} {fastest['precision']} {fastest['s_per_iter']:.3f} s/iter")
PY
}

printf '# GPU check (%s), %s\n\n| check | status | seconds | notes |\n|---|---|---|---|\n' "$ACCELERATOR" "$(date -u +%FT%TZ)" > "$SUMMARY"
check environment environment
check cyclegan cyclegan_and_resume cyclegan
check cyclegan_ema_compile cyclegan_and_resume cyclegan_ema_compile model.ema_decay=0.999 "${COMPILE[@]}"
check spade spade
check pix2pix pix2pix
check nst nst
check painter painter
check benchmark benchmark
echo "all checks passed ($SECONDS s); summary: $SUMMARY"
cat "$SUMMARY"
