"""Bit-exact reference decoder in plain NumPy (no torch, no tvm): the golden model."""
