#!/usr/bin/env bash
# The X-ray workflow end to end, as in docs/xray.md: a procedural "Wild Vegetation" (painted from
# examples/sketches/wild_vegetation.png) hidden under Van Gogh's wheat field (../shared/data), separated, traced
# and painted in the style of The Starry Night with the hidden X-ray as the structure. ~15 min on 2 busy CPU cores.
set -euo pipefail
OUT=${1:-outputs/xray_demo}
SHARED=${SHARED:-../shared}
mkdir -p "$OUT"
python - "$OUT/hidden_painting.png" <<'PY'
import sys, torch
from underpainting.data.images import load_rgb, tensor_to_pil
from underpainting.data.labels import LabelSet
from underpainting.data.sketch import decode_sketch
from underpainting.data.synthetic import SyntheticLandscapes
labels = LabelSet.from_yaml("conf/labels/landscape.yaml")
ids = decode_sketch(load_rgb("examples/sketches/wild_vegetation.png"), labels)
painting = SyntheticLandscapes(labels, tuple(ids.shape)).painting(ids, torch.Generator().manual_seed(5))
tensor_to_pil(painting).save(sys.argv[1])
PY
python -m underpainting.xray simulate "$SHARED/data/vangogh_landscapes/testA/vangogh_099.jpg" "$OUT/hidden_painting.png" --out "$OUT/sim"
python -m underpainting.xray separate "$OUT/sim/xray.png" "$OUT/sim/visible.png" --truth "$OUT/sim/hidden_truth.png" --out "$OUT/sep"
python -m underpainting.xray trace "$OUT/sep/hidden.png" --sketch examples/sketches/wild_vegetation.png --out "$OUT/trace"
NST=(module.vgg.arch=vgg16 "module.vgg.weights=$SHARED/weights/vgg16_caffe_features.pth" "pyramid=[{edge:128,steps:80},{edge:256,steps:30}]")
ARGS=()
for stage in nst nst_xray; do for o in "${NST[@]}"; do ARGS+=("stage2.$stage.$o"); done; done
python infer.py progress=false input=examples/sketches/wild_vegetation.png infer/stage1=procedural 'infer/stage2=[nst,nst_xray]' \
    "xray=$OUT/sep/hidden.png" "style.painting=$SHARED/data/style/starry_night_1889.jpg" \
    style.labels=docs/images/nst_starry_night_labels.png "hydra.run.dir=$OUT/infer" "${ARGS[@]}"
echo "sheets: $OUT/sep/contact_sheet.png $OUT/trace/backdrop.png $OUT/infer/wild_vegetation/contact_sheet.png"
