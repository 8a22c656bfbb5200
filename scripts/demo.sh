#!/usr/bin/env bash
# The main job on the embedded default data: quantize the quickstart recipe and export it for llvm
# (the whole pipeline in about two minutes); then code two bundled images with the shipped light image
# model (zoo/) through both integer engines, check they agree, print a compare table; then code the
# bundled speech clip with the shipped speech model through both engines.
set -euo pipefail
BIN=${VENV:-.venv}/bin
RUN=runs/quickstart
IMAGES=runs/demo-images
mkdir -p "$IMAGES"
SAMPLES=$("$BIN/python" -c "import matplotlib, os; print(os.path.join(matplotlib.get_data_path(), 'sample_data'))")
cp "$SAMPLES/grace_hopper.jpg" "$IMAGES/grace_hopper.jpg"                       # 512x600 (not a multiple of 16)
cp "$SAMPLES/Minduka_Present_Blue_Pack.png" "$IMAGES/minduka_rgba.png"         # 128x128 RGBA

"$BIN/bpgan-quantize" recipes/quickstart.yaml --out "$RUN"
"$BIN/bpgan-export" "$RUN" --target llvm
echo "demo: quickstart quantized and exported: $RUN/report.md, $RUN/export"

RUN=runs/image-demo   # the shipped model; copied so that the TVM library built for this CPU stays out of zoo/
rm -rf "$RUN" && cp -r zoo/bpgan-image-light "$RUN"
"$BIN/bpgan-export" "$RUN" --target llvm
for img in "$IMAGES"/*; do
  name=$(basename "${img%.*}")
  "$BIN/bpgan-encode" "$RUN" "$img" -o "$RUN/demo/$name.bpg" --iters 0
  "$BIN/bpgan-decode" "$RUN" "$RUN/demo/$name.bpg" -o "$RUN/demo/$name-ref.png" --engine ref
  "$BIN/bpgan-decode" "$RUN" "$RUN/demo/$name.bpg" -o "$RUN/demo/$name-tvm.png" --engine tvm
  cmp "$RUN/demo/$name-ref.png" "$RUN/demo/$name-tvm.png"
  echo "demo: $name: reference and TVM decoders wrote identical PNGs"
done
"$BIN/bpgan-compare" "$RUN" --data "$IMAGES" --quiet
VENV=${VENV:-.venv} bash scripts/demo_audio.sh   # speech: the shipped model and clip, both engines
VENV=${VENV:-.venv} bash scripts/demo_audio.sh idf-speech-light runs/lossless-demo   # lossless: exact samples
echo "demo: comparison runs/image-demo/compare/compare.md, speech runs/audio-demo/demo, lossless runs/lossless-demo/demo"
