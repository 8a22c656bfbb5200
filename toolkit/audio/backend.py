"""The speech back end, int8 mel codes -> samples, in one place for bpgan-decode, the codec and the API.

Default: firmware_ref/speech.py's integer back end (NNLS mel inversion + Griffin-Lim on integers), the
same PCM16 on every machine. float_backend=True: librosa's float Griffin-Lim (mel.py), the earlier
back end, which may differ across machines. Imports are lazy: the integer path needs NumPy only.
"""
import numpy as np

from bpgan.firmware_ref.speech import GRIFFIN_LIM_ITERS


def codes_to_samples(codes: np.ndarray, num_samples: int, iters: int = GRIFFIN_LIM_ITERS,
                     float_backend: bool = False) -> np.ndarray:
    """int8 mel codes (64, T) at 2^-7 -> float32 samples at 8 kHz: the integer back end's PCM16 / 32768
    (exact), or librosa's Griffin-Lim output as it is."""
    if float_backend:
        from ..quant.quantizers import OUTPUT_FRAC_BITS
        from .mel import int8_to_unit, mel_to_wav
        return mel_to_wav(int8_to_unit(codes, OUTPUT_FRAC_BITS), num_samples, iters)
    from bpgan.firmware_ref.speech import mel_to_pcm16
    return mel_to_pcm16(codes, num_samples, iters).astype(np.float32) / np.float32(32768)


__all__ = ["GRIFFIN_LIM_ITERS", "codes_to_samples"]
