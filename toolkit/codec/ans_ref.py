"""The plain-Python ANS decoder (the spec for device ports) now lives in firmware_ref/ans.py; re-exported here."""
from bpgan.firmware_ref.ans import PRECISION, decode_symbols as decode_symbols_ref  # noqa: F401

__all__ = ["PRECISION", "decode_symbols_ref"]
