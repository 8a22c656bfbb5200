#!/usr/bin/env bash
# Lossless speech demo on shipped files only: the integer discrete flow in zoo/ and the embedded LJ Speech
# clip. Export it for llvm, code the clip losslessly, decode it with both integer engines, check that both
# WAVs hold exactly the clip's samples.
set -euo pipefail
BIN=${VENV:-.venv}/bin
RUN=runs/lossless-demo
CLIP=toolkit/datasets/lj001-0013-8k.wav
rm -rf "$RUN" && mkdir -p runs && cp -r zoo/idf-speech-light "$RUN"
"$BIN/bpgan-export" "$RUN" --target llvm
"$BIN/bpgan-encode" "$RUN" "$CLIP" -o "$RUN/demo/speech.bpg"
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-ref.wav" --engine ref
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-tvm.wav" --engine tvm
cmp "$RUN/demo/speech-ref.wav" "$RUN/demo/speech-tvm.wav"
"$BIN/python" -c "import sys, numpy as np, soundfile as sf; a, b = (sf.read(p, dtype='int16')[0] for p in sys.argv[1:]); \
assert np.array_equal(a, b), 'samples differ'" "$CLIP" "$RUN/demo/speech-ref.wav"
echo "demo-lossless: reference and TVM decoders wrote the clip's exact samples: $RUN/demo/speech-ref.wav"
