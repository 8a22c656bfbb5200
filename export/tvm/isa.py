"""Which exact int8 kernel family a target gets, and what a compiled library needs from the CPU that runs it.

Every family keeps the same NCHW16c layout, packing and phase structure (tvm.kernels, tvm.schedule);
an Isa only says how one 16-lane int32 accumulator step is computed:
  vnni     vpdpbusd zmm: 4 uint8 x int8 products per lane, one instruction (AVX512-VNNI)
  avx2     vpmaddwd ymm x2 + vpaddd: 2 int16 x int16 products per lane (operands widened at packing /
           padding time, so no offset trick and no saturation; see tvm.avx2)
  i8mm     usdot q x4: 4 uint8 x int8 products per lane, one instruction per 4 lanes (aarch64 Armv8.6 i8mm)
  dotprod  sdot q x4: 4 int8 x int8 products per lane (aarch64 Armv8.2 dotprod; uint8 inputs offset by -128)
  generic  the same loops vectorized in int32 by LLVM: exact anywhere, no dot-product instruction
The accumulator budget counts 16-lane accumulators: 24 of the 32 zmm registers for VNNI, 6 (12 ymm)
of the 16 ymm registers for AVX2, leaving room for the broadcast input and the products. AVX2 tiles
are 1 output block x 6 pixels (measured on Zen 4 running x86-64-v3 code, 64->64 3x3 at 32x48: 81
GMAC/s vs 54 for 2 x 3, 63 for 1 x 7 which spills), and its pixel conv holds one group of 16
pixels (two ymm of int16 operands per group leave no room for more: 42 vs 34 GMAC/s). Its phase
conv unrolls two channel groups per step, so the loads of the next step overlap this one's products
(x86-64-v3 code: 0.72 -> 0.69 ms for that conv, 7.9 -> 7.7 ms for the 24->16 convT at 256x384;
LLVM's znver3 model interleaves so by itself).

A library records what it was built for in a sidecar json (decoder-llvm.isa.json): TvmDecoder reads
it and refuses, in one line, a CPU whose /proc/cpuinfo lacks a required flag (instead of SIGILL).
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tvm

from bpgan.firmware_ref.program import ProgramError


class UnsupportedCpu(RuntimeError):
    """A library needs CPU features this machine lacks (raised before loading it, instead of SIGILL)."""


@dataclass(frozen=True)
class Isa:
    name: str
    group: int                  # input channels summed into one int32 lane per step
    act_dtype: str              # dtype of the padded activations the kernel reads
    w_dtype: str                # dtype of the packed weights
    oc_intrin: Optional[str]    # tensor intrinsic C[16] += A[group] . B[16, group]; None: vectorized loops
    pix_intrin: Optional[str]   # tensor intrinsic C[16] += A[16, group] . B[group]
    acc_vectors: int            # 16-lane int32 accumulators a register tile may hold
    max_tob: int                # output-channel blocks of 16 per phase-conv tile (the rest of the tile is pixels)
    max_pix_tile: int           # groups of 16 pixels per pixel-conv tile
    unroll_rc: int              # input-channel groups per unrolled reduction step of the phase conv
    needs: tuple                # LLVM target features the kernels require


def _isas():
    from . import avx2, neon, vnni
    return {
        "vnni": Isa("vnni", 4, "uint8", "int8", vnni.OC16_INTRIN, vnni.PIX16_INTRIN, 24, 4, 4, 1,
                    ("avx512vnni",)),
        "avx2": Isa("avx2", 2, "int16", "int16", avx2.OC16_INTRIN, avx2.PIX16_INTRIN, 6, 1, 1, 2,
                    ("avx2",)),
        # 32 q registers: 6 accumulators of 4 q each, the rest for operands (tiles not tuned: no device here)
        "i8mm": Isa("i8mm", 4, "uint8", "int8", *neon.INTRINSICS["i8mm"], 6, 2, 1, 1, ("neon", "i8mm")),
        "dotprod": Isa("dotprod", 4, "int8", "int8", *neon.INTRINSICS["dotprod"], 6, 2, 1, 1, ("neon", "dotprod")),
        "generic": Isa("generic", 4, "uint8", "int8", None, None, 24, 4, 4, 1, ()),
    }


ISAS = _isas()
ISA_NAMES = tuple(ISAS)
# mcpu when an ISA is asked for without one. avx2: always the x86-64-v3 level (AVX2 + FMA, no AVX-512),
# so the whole library (pad and elementwise stages too, which LLVM vectorizes for whatever mcpu says)
# runs on every AVX2 CPU; vnni: this machine's CPU if it has VNNI, else the first such Xeon; generic
# (and auto): this machine's CPU.
PORTABLE_MCPU = {"avx2": "x86-64-v3"}
VNNI_MCPU = "cascadelake"

# LLVM feature -> /proc/cpuinfo flag (x86 and aarch64 spellings)
CPU_FLAGS = {"avx2": "avx2", "fma": "fma", "avx512f": "avx512f", "avx512bw": "avx512bw",
             "avx512vnni": "avx512_vnni", "neon": "asimd", "dotprod": "asimddp", "i8mm": "i8mm"}


def has_features(target: tvm.target.Target, features) -> bool:
    if not features:
        return True
    return target.kind.name == "llvm" and all(tvm.target.codegen.target_has_features(f, target) for f in features)


def llvm_mcpu(isa: Optional[str], mcpu: Optional[str] = None) -> str:
    """The mcpu of an llvm build: the explicit one, else as PORTABLE_MCPU / VNNI_MCPU above say."""
    if mcpu:
        return mcpu
    if isa in PORTABLE_MCPU:
        return PORTABLE_MCPU[isa]
    host = tvm.target.codegen.llvm_get_system_cpu()
    if isa == "vnni" and not has_features(tvm.target.Target({"kind": "llvm", "mcpu": host}), ("avx512vnni",)):
        return VNNI_MCPU
    return host


def pick_isa(target: tvm.target.Target, isa: Optional[str] = None) -> Isa:
    """The requested ISA (refused when the target lacks it) or the best the target's features allow."""
    if isa is not None:
        if isa not in ISAS:
            raise ProgramError(f"unknown isa {isa!r}; choose one of {', '.join(ISA_NAMES)}")
        if not has_features(target, ISAS[isa].needs):
            raise ProgramError(f"isa {isa!r} needs {', '.join(ISAS[isa].needs)}, which target {target} lacks")
        return ISAS[isa]
    return next(i for i in ISAS.values() if has_features(target, i.needs))  # ordered best first; generic last


def required_flags(target: tvm.target.Target) -> list:
    """The /proc/cpuinfo flags a library built for target executes (from its enabled features)."""
    return sorted(flag for feat, flag in CPU_FLAGS.items() if has_features(target, (feat,)))


def sidecar_path(lib_path) -> Path:
    p = Path(lib_path)
    return p.with_name(p.name.split(".")[0] + ".isa.json")


def write_sidecar(lib_path, isa: Optional[Isa], target: tvm.target.Target) -> Path:
    info = {"isa": isa.name if isa else "none", "mcpu": str(target.attrs.get("mcpu", "")),
            "requires_cpu_flags": required_flags(target)}
    path = sidecar_path(lib_path)
    path.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return path


def cpu_flags() -> Optional[set]:
    """This machine's CPU flags from /proc/cpuinfo; None where it cannot be read (then nothing is checked)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return None


def check_cpu(lib_path) -> None:
    """Raise UnsupportedCpu (one line) when this CPU lacks a flag the library's sidecar requires."""
    path = sidecar_path(lib_path)
    if not path.is_file():
        return  # libraries from before the sidecar: nothing recorded, nothing checked
    info = json.loads(path.read_text())
    have = cpu_flags()
    missing = [f for f in info.get("requires_cpu_flags", []) if have is not None and f not in have]
    if missing:
        raise UnsupportedCpu(f"{Path(lib_path).name} was built for isa {info.get('isa')!r} (mcpu "
                             f"{info.get('mcpu')!r}); this CPU lacks {', '.join(missing)}: export it again "
                             f"for this CPU (the default isa follows the CPU's features)")
