"""The integer ops, one module per family; importing this package registers every kind.

  conv.py        conv2d, conv_transpose2d, conv1d, conv_transpose1d
  elementwise.py add, clip
  layout.py      pixel_shuffle, upsample_nearest, concat, reflect_pad
  unpool.py      argmax_unpool
  norm.py        instance_norm
  log2.py        log2_abs
docs/adding-an-op.md says what a new kind needs.
"""
from . import conv, elementwise, layout, log2, norm, unpool  # noqa: F401  (registration)
from .registry import REGISTRY, Attr, OpSpec, register, validate_op

OP_KINDS = tuple(REGISTRY)
CONV_KINDS = conv.CONV_KINDS

__all__ = ["REGISTRY", "Attr", "OpSpec", "register", "validate_op", "OP_KINDS", "CONV_KINDS"]
