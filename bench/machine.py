"""What a benchmark ran on: CPU model, the SIMD flags the kernels care about, cores, Python and date."""
import datetime
import os
import platform

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "asimddp", "i8mm")


def describe() -> str:
    """One line, e.g. 'AMD EPYC 7B13 | avx2 | 2 cores | Python 3.11.7 | 2026-12-01'."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags |= set(value.split())
    except OSError:
        pass
    have = [f for f in FLAGS if f in flags] or ["no listed SIMD flags"]
    return (f"{model} | {' '.join(have)} | {os.cpu_count()} cores | Python {platform.python_version()} | "
            f"{datetime.date.today().isoformat()}")
