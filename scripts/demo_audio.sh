#!/usr/bin/env bash
# Speech demo on shipped files only: a speech model in zoo/ (default the light speech model; the lossless
# flow idf-speech-light too) and the embedded LJ Speech clip. Export it for llvm, code the clip, decode it
# with both integer engines, check the WAVs agree; for a lossless model, that they hold the clip's samples.
#   bash scripts/demo_audio.sh [ZOO_NAME [RUN]]
set -euo pipefail
BIN=${VENV:-.venv}/bin
NAME=${1:-bpgan-audio-light}
RUN=${2:-runs/audio-demo}
CLIP=toolkit/datasets/lj001-0013-8k.wav
rm -rf "$RUN" && mkdir -p runs && cp -r "zoo/$NAME" "$RUN"
"$BIN/bpgan-export" "$RUN" --target llvm
"$BIN/bpgan-encode" "$RUN" "$CLIP" -o "$RUN/demo/speech.bpg" --iters 0   # (a lossless model has no search)
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-ref.wav" --engine ref
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-tvm.wav" --engine tvm
cmp "$RUN/demo/speech-ref.wav" "$RUN/demo/speech-tvm.wav"
if grep -q '"lossless"' "$RUN/export/program.json"; then
    "$BIN/python" -c "import sys, numpy as np, soundfile as sf; a, b = (sf.read(p, dtype='int16')[0] for p in sys.argv[1:]); \
assert np.array_equal(a, b), 'samples differ'" "$CLIP" "$RUN/demo/speech-ref.wav"
    echo "demo-audio: $NAME: reference and TVM decoders wrote the clip's exact samples: $RUN/demo/speech-ref.wav"
else
    echo "demo-audio: $NAME: reference and TVM decoders wrote identical WAVs: $RUN/demo/speech-ref.wav"
fi
