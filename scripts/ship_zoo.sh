#!/usr/bin/env bash
# Copy a finished, exported run into zoo/NAME: what encoding and decoding need, nothing host-specific.
#   bash scripts/ship_zoo.sh runs/image-light bpgan-image-light recipes/bpgan-image-light.yaml
# Kept: the final stage's model.pt (float encoder + 8-bit generator + masks), prior.npy (lossy models), metrics.json,
# entropy_model.pt and export/entropy/ (a learned entropy model);
# the integer program (export/program.json + program.npz) and its test vectors; report.md/json,
# curves.png and the recipe; a golden bitstream with its decoded integers (scripts/golden_streams.py). Not kept: the TVM library (built for this CPU; bpgan-export rebuilds it).
set -euo pipefail
RUN=$1; NAME=$2; RECIPE=$3
STAGE=$(basename "$(dirname "$(${VENV:-.venv}/bin/python -c "import sys; from bpgan.toolkit.training.checkpoint import final_model_path; print(final_model_path(sys.argv[1]))" "$RUN")")")
DEST=zoo/$NAME
test -f "$RUN/export/program.json" || { echo "ship_zoo: $RUN has no export; run bpgan-export $RUN --target llvm" >&2; exit 2; }
rm -rf "$DEST" && mkdir -p "$DEST/$STAGE" "$DEST/export"
cp "$RUN/$STAGE"/{model.pt,metrics.json} "$DEST/$STAGE/"
if [ -f "$RUN/$STAGE/prior.npy" ]; then cp "$RUN/$STAGE/prior.npy" "$DEST/$STAGE/"; fi   # lossless: tables in the program
cp "$RUN/export"/{program.json,program.npz,test_vectors.npz} "$DEST/export/"
if [ -f "$RUN/$STAGE/entropy_model.pt" ]; then   # a learned entropy model: its net, metrics and program
    cp "$RUN/$STAGE"/{entropy_model.pt,entropy_metrics.json} "$DEST/$STAGE/"
    mkdir -p "$DEST/export/entropy" && cp "$RUN/export/entropy"/{program.json,program.npz,test_vectors.npz} "$DEST/export/entropy/"
fi
cp "$RUN"/{report.md,report.json,curves.png} "$DEST/"
# zoo/NAME sits one folder deeper than recipes/: its copy's relative data paths get one more ../
sed -E 's#^(  (train|val): )\.\./#\1../../#' "$RECIPE" > "$DEST/recipe.yaml"
${VENV:-.venv}/bin/python scripts/golden_streams.py "$DEST"   # export/golden.bpg + golden.npz
du -sh "$DEST"
