#!/usr/bin/env bash
# One short GPU check (device machine, torch preinstalled, no network): CUDA AMP correctness on a real training run,
# then the CycleGAN speed/memory table. Needs hydra/omegaconf/lightning on PYTHONPATH (carried in .gpu_pkgs/).
set -u
export PYTHONPATH=$PWD/.gpu_pkgs:$PWD/src:$PWD WANDB_MODE=disabled
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
echo "== AMP: quickstart CycleGAN, 16-mixed on CUDA, 3 epochs"
timeout 120 python3 train.py experiment=quickstart trainer=gpu trainer.precision=16-mixed logger=csv trainer.max_epochs=3 \
  model.scheduler.n_epochs=2 model.scheduler.n_epochs_decay=1 callbacks.progress_bar=null hydra.run.dir="$OUT/amp16" 2>&1 | grep -E "final metrics|Error|error" | tail -3
python3 - "$OUT/amp16/csv/metrics.csv" <<'PY'
import csv, math, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r.get("train/cycle_A")]
c = [float(r["train/cycle_A"]) + float(r["train/cycle_B"]) for r in rows]
print(f"16-mixed: {len(c)} logged steps, cycle {c[0]:.3f} -> {c[-1]:.3f}, all finite: {all(map(math.isfinite, c))}")
PY
echo "== CycleGAN benchmark (reference nets, batch 1)"
timeout 300 python3 benchmarks/cyclegan.py --sizes ${SIZES:-128 256} --steps 15
