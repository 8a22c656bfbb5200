"""The integer formats every firmware_ref module shares (a leaf: imports nothing of the package).

A tensor's format is (dtype, frac_bits): value = integer * 2**-frac_bits. Program format versions:
  bpgan-intprog/1  int8 / uint8 tensors (the first shipped zoo models); still read as is
  bpgan-intprog/2  adds int16 / int32 tensors, several inputs and outputs, schema-checked op attributes
"""
FORMAT = "bpgan-intprog/2"
READABLE_FORMATS = ("bpgan-intprog/1", FORMAT)
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-2 ** 15, 2 ** 15 - 1),
               "int32": (-2 ** 31, 2 ** 31 - 1)}
V1_DTYPES = ("uint8", "int8")
INT32_MIN, INT32_MAX = DTYPE_RANGE["int32"]
MAX_FRAC_BITS = 31   # |frac_bits| and |shift| above this would shift an int32 out entirely


class ProgramError(ValueError):
    """A program file that is malformed, tampered with, or outside the integer contract (one line)."""
