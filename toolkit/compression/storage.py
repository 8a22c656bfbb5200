"""Model size in bytes, four ways, by really packing the generator's tensors.

- float32 dense:            weights and biases as float32.
- int8 dense:               int8 weights, int32 biases, one exponent byte per weight scale.
- int8 + sparse:            per layer a bitmap of non-zero weights, the non-zero int8 values, biases, exponents.
- codebook + sparse:        bitmap, b-bit codebook indices of the non-zero weights, the codebook, biases, exponents.
Each packer returns the bytes; sizes are len() of them, not estimates.
"""
from typing import Dict, Optional

import numpy as np


def _bias_and_exponents(layer) -> bytes:
    return layer["bias"].astype("<i4").tobytes() + layer["exponents"].astype(np.int8).tobytes()


def pack_float32(layers: Dict[str, dict]) -> bytes:
    return b"".join(l["float_weight"].astype("<f4").tobytes() + l["float_bias"].astype("<f4").tobytes()
                    for l in layers.values())


def pack_int8_dense(layers: Dict[str, dict]) -> bytes:
    return b"".join(l["weight"].astype(np.int8).tobytes() + _bias_and_exponents(l) for l in layers.values())


def pack_int8_sparse(layers: Dict[str, dict]) -> bytes:
    out = []
    for l in layers.values():
        w = l["weight"].ravel()
        out += [np.packbits(w != 0).tobytes(), w[w != 0].astype(np.int8).tobytes(), _bias_and_exponents(l)]
    return b"".join(out)


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Little-endian bit packing of unsigned values < 2**bits."""
    if values.size == 0:
        return b""
    planes = ((values[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def pack_codebook_sparse(layers: Dict[str, dict], codebooks: Dict[str, np.ndarray]) -> Optional[bytes]:
    out = []
    for name, l in layers.items():
        if name not in codebooks:
            return None
        book = np.asarray(codebooks[name], dtype=np.int64)
        w = l["weight"].ravel().astype(np.int64)
        nz = w[w != 0]
        index = {int(v): i for i, v in enumerate(book)}
        missing = set(np.unique(nz).tolist()) - set(index)
        if missing:
            raise ValueError(f"{name}: weights {sorted(missing)[:3]} are not in its codebook")
        bits = max(1, int(np.ceil(np.log2(max(len(book), 2)))))
        idx = np.array([index[int(v)] for v in nz], dtype=np.int64)
        out += [np.packbits(w != 0).tobytes(), pack_bits(idx, bits), bytes([len(book)]),
                book.astype(np.int8).tobytes(), _bias_and_exponents(l)]
    return b"".join(out)


def model_sizes(layers: Dict[str, dict], codebooks: Optional[Dict[str, np.ndarray]] = None) -> dict:
    codebook_bytes = pack_codebook_sparse(layers, codebooks) if codebooks else None
    return {
        "float32_dense": len(pack_float32(layers)),
        "int8_dense": len(pack_int8_dense(layers)),
        "int8_sparse": len(pack_int8_sparse(layers)),
        "codebook_sparse": None if codebook_bytes is None else len(codebook_bytes),
    }
