"""The reference kernels by name: they live beside their op specs in ops/ (one module per family).

This module gathers them for callers that want plain functions (tests, benchmarks, ports).
"""
import numpy as np

from .formats import DTYPE_RANGE
from .ops.conv import (conv1d_acc, conv2d_acc, conv_transpose1d_acc, conv_transpose2d_acc,  # noqa: F401
                       exact_float_dtype, requantize)
from .ops.elementwise import add, clip  # noqa: F401
from .ops.layout import concat, pixel_shuffle, upsample_nearest  # noqa: F401
from .rounding import rounding_shift  # noqa: F401


def in_range(x: np.ndarray, dtype: str) -> bool:
    lo, hi = DTYPE_RANGE[dtype]
    return x.size == 0 or (x.min() >= lo and x.max() <= hi)
