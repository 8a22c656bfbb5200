"""Speech front and back end around the BPGAN mel codec.

wav   audio files -> 8 kHz mono float samples (resampling and downmixing with notes), 16-bit WAV out
mel   samples <-> the [-1, 1] log-mel image the model codes (64 bands, hop 8 ms) and Griffin-Lim inversion
codec encode_audio / decode_audio: WAV -> bitstream -> WAV with the shared bitstream, prior and engines
"""
