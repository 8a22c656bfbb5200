#!/usr/bin/env bash
# Speech demo on shipped files only: the light speech model in zoo/ and the embedded LJ Speech
# clip. Export it for llvm, code the clip, decode it with both integer engines, check the WAVs agree.
set -euo pipefail
BIN=${VENV:-.venv}/bin
RUN=runs/audio-demo
CLIP=toolkit/datasets/lj001-0013-8k.wav
rm -rf "$RUN" && mkdir -p runs && cp -r zoo/bpgan-audio-light "$RUN"
"$BIN/bpgan-export" "$RUN" --target llvm
"$BIN/bpgan-encode" "$RUN" "$CLIP" -o "$RUN/demo/speech.bpg" --iters 0
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-ref.wav" --engine ref
"$BIN/bpgan-decode" "$RUN" "$RUN/demo/speech.bpg" -o "$RUN/demo/speech-tvm.wav" --engine tvm
cmp "$RUN/demo/speech-ref.wav" "$RUN/demo/speech-tvm.wav"
echo "demo-audio: reference and TVM decoders wrote identical WAVs: $RUN/demo/speech-ref.wav"
