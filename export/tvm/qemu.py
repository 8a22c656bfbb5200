"""Run an aarch64 TVM library under qemu-aarch64, so `bpgan-export --target aarch64` is verified, not just built.

Three pieces, each made once and cached under CACHE ($XDG_CACHE_HOME or ~/.cache, then bpgan-edge/tvm-aarch64):
  runtime-<tvm>-<ffi>/  libtvm_runtime.so + libtvm_ffi.so from PyPI's manylinux aarch64 wheels of the SAME
                        apache-tvm / apache-tvm-ffi versions as the compiler in this environment (a runtime of
                        another version may not read the library's VM bytecode); $BPGAN_TVM_AARCH64_RUNTIME
                        names a folder holding the two instead (machines without network)
  loader-<hash>         qemu_loader/loader.c cross-compiled against that runtime (key: source + runtime)
  the library itself    export_library's .tar holds objects; they are linked into a .so per run
The loader loads the .so through the runtime, creates the Relax VM on the CPU, runs main on tensors from
files and writes its outputs; the caller compares them with the reference. Time measured under qemu is
emulated time (TCG), not the time on an aarch64 device.
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

QEMU, CC = "qemu-aarch64", "aarch64-linux-gnu-gcc"
SYSROOT = Path("/usr/aarch64-linux-gnu")  # Debian's cross sysroot: qemu -L and the loader's libc
LOADER_SRC = Path(__file__).with_name("qemu_loader") / "loader.c"
RUNTIME_LIBS = {"libtvm_runtime.so": ("apache-tvm", "tvm/lib/"), "libtvm_ffi.so": ("apache-tvm-ffi", "tvm_ffi/lib/")}
WHEEL_PLATFORM = "manylinux_2_28_aarch64"
RUN_TIMEOUT_S = 900
NOT_VERIFIED = "cross-compiled; cannot run on this machine, not verified here"
# DLDataType codes of the tensor files (dlpack: kDLInt 0, kDLUInt 1, kDLFloat 2)
DL_CODES = {"i": 0, "u": 1, "f": 2}


class Unavailable(RuntimeError):
    """qemu-aarch64, the cross toolchain or the aarch64 runtime is missing here (one line: which, and the fix)."""


def _gist(stderr: str, fallback: str = "?") -> str:
    """A tool's first error line (gcc's last line is collect2's summary, which says nothing)."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else fallback)


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bpgan-edge" / "tvm-aarch64"


def check_tools() -> None:
    """Raise Unavailable when this machine cannot build or emulate aarch64 Linux programs."""
    if shutil.which(QEMU) is None:
        raise Unavailable(f"no {QEMU} on PATH (apt-get install qemu-user)")
    if shutil.which(CC) is None:
        raise Unavailable(f"no {CC} on PATH (apt-get install gcc-aarch64-linux-gnu)")
    # libstdc++/libgcc_s: the wheel's runtime is C++; ld-linux: qemu -L runs dynamic binaries with it
    for lib, pkg in (("ld-linux-aarch64.so.1", "libc6-dev-arm64-cross"), ("libstdc++.so.6", "libstdc++6-arm64-cross")):
        if not (SYSROOT / "lib" / lib).exists():
            raise Unavailable(f"no {SYSROOT / 'lib' / lib} (apt-get install {pkg})")


def _versions() -> dict:
    """The runtime versions to fetch: those of the installed compiler packages."""
    try:
        return {dist: metadata.version(dist) for dist, _ in RUNTIME_LIBS.values()}
    except metadata.PackageNotFoundError as e:
        raise Unavailable(f"cannot tell which TVM runtime to fetch: package {e} is not installed") from None


def runtime_dir() -> Path:
    """The folder holding the aarch64 libtvm_runtime.so and libtvm_ffi.so (downloaded once, then cached)."""
    given = os.environ.get("BPGAN_TVM_AARCH64_RUNTIME")
    if given:
        missing = [n for n in RUNTIME_LIBS if not (Path(given) / n).is_file()]
        if missing:
            raise Unavailable(f"$BPGAN_TVM_AARCH64_RUNTIME={given} lacks {', '.join(missing)}")
        return Path(given)
    vers = _versions()
    final = cache_dir() / ("runtime-" + "-".join(vers.values()))
    if all((final / n).is_file() for n in RUNTIME_LIBS):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        reqs = [f"{dist}=={v}" for dist, v in vers.items()]
        pyver = f"{sys.version_info.major}.{sys.version_info.minor}"
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--platform", WHEEL_PLATFORM, "--python-version", pyver, "-d", tmp, *reqs]
        try:
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            r = subprocess.CompletedProcess(cmd, 1, "", "timed out after 900 s")
        wheels = {w.name.split("-")[0].replace("_", "-"): w for w in Path(tmp).glob("*.whl")}
        if r.returncode != 0 or set(wheels) != set(vers):
            raise Unavailable(f"cannot download the aarch64 TVM runtime (pip download {' '.join(reqs)} "
                              f"--platform {WHEEL_PLATFORM}): {_gist(r.stderr, 'no wheels')}")
        staging = Path(tmp) / "libs"
        staging.mkdir()
        for name, (dist, folder) in RUNTIME_LIBS.items():
            with zipfile.ZipFile(wheels[dist]) as z:
                (staging / name).write_bytes(z.read(folder + name))  # only the two libs; the wheels go
        try:
            os.replace(staging, final)  # atomic: a half-extracted runtime is never seen as cached
        except OSError:
            if not all((final / n).is_file() for n in RUNTIME_LIBS):  # not a concurrent winner: a real error
                shutil.rmtree(final, ignore_errors=True)
                os.replace(staging, final)
    return final


def _include_dirs() -> list:
    """The tvm-ffi C headers (tvm/ffi/c_api.h, dlpack/dlpack.h) of the installed x86 wheel."""
    import tvm_ffi.libinfo as info

    return [info.find_include_path(), info.find_dlpack_include_path()]


def loader_path() -> Path:
    """The cross-compiled loader, built once per loader source and runtime version."""
    rt = runtime_dir()
    if not LOADER_SRC.is_file():  # a wheel built without the package data qemu_loader/*.c
        raise Unavailable(f"the loader source {LOADER_SRC} is not installed")
    # keyed by the runtime's bytes too: $BPGAN_TVM_AARCH64_RUNTIME may hold another build than the cache
    key = hashlib.sha256(LOADER_SRC.read_bytes() + b"".join(hashlib.sha256((rt / n).read_bytes()).digest()
                                                             for n in sorted(RUNTIME_LIBS))).hexdigest()
    exe = cache_dir() / f"loader-{key[:16]}"
    if exe.is_file():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")
    # --no-as-needed: the loader calls only tvm-ffi, yet needs libtvm_runtime loaded for the VM and its loaders
    cmd = [CC, "-O2", "-std=c11", "-Wall", *[f"-I{d}" for d in _include_dirs()], str(LOADER_SRC),
           f"-L{rt}", "-Wl,--no-as-needed", "-ltvm_runtime", "-ltvm_ffi", "-o", str(tmp)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cannot build the aarch64 loader: {_gist(r.stderr)}")
    os.replace(tmp, exe)
    return exe


def link_library(lib_path, work_dir) -> Path:
    """export_library's .tar (objects) -> a .so linked by the cross gcc in work_dir; a .so is used as it is."""
    lib_path = Path(lib_path)
    if lib_path.suffix == ".so":
        return lib_path
    objs = []
    with tarfile.open(lib_path) as t:  # only its plain .o members, by base name (no paths from the archive)
        for m in t.getmembers():
            if m.isfile() and m.name.endswith(".o"):
                objs.append(Path(work_dir) / f"{len(objs)}-{Path(m.name).name}")
                objs[-1].write_bytes(t.extractfile(m).read())
    if not objs:
        raise RuntimeError(f"{lib_path} holds no object files to link")
    so = Path(work_dir) / (lib_path.stem + ".so")
    r = subprocess.run([CC, "-shared", "-fPIC", "-o", str(so), *map(str, objs)],
                       check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"cannot link {lib_path.name} for aarch64: {_gist(r.stderr)}")
    return so


def write_tensor(path, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    head = struct.pack("<4sBBHi", b"BPGT", DL_CODES[a.dtype.kind], a.dtype.itemsize * 8, 1, a.ndim)
    Path(path).write_bytes(head + struct.pack(f"<{a.ndim}q", *a.shape) + a.astype(a.dtype.newbyteorder("<")).tobytes())


def read_tensor(path) -> np.ndarray:
    raw = Path(path).read_bytes()
    magic, code, bits, _, ndim = struct.unpack_from("<4sBBHi", raw)
    if magic != b"BPGT":
        raise RuntimeError(f"{path} is not a tensor file the loader wrote")
    shape = struct.unpack_from(f"<{ndim}q", raw, 12)
    kind = {v: k for k, v in DL_CODES.items()}[code]
    return np.frombuffer(raw, np.dtype(f"<{kind}{bits // 8}"), offset=12 + 8 * ndim).reshape(shape).copy()


def run(lib_path, groups, timeout=RUN_TIMEOUT_S):
    """Run main once per group of input arrays under qemu-aarch64 -> (outputs: a list per group, seconds per
    call of main, seconds of the whole qemu process).

    One qemu process runs every group, so the runtime is loaded once. Main's seconds are measured inside
    the emulated process; the process's include qemu start-up and loading. Emulated time, not device time."""
    check_tools()
    exe, rt = loader_path(), runtime_dir()
    groups = [list(g) for g in groups]
    with tempfile.TemporaryDirectory(prefix="bpgan-qemu-") as work:
        so = link_library(lib_path, work)
        files = []
        for gi, g in enumerate(groups):
            for i, a in enumerate(g):
                files.append(Path(work) / f"in{gi}_{i}.bpgt")
                write_tensor(files[-1], a)
        cmd = [QEMU, "-L", str(SYSROOT), "-E", f"LD_LIBRARY_PATH={rt}", str(exe), str(so), str(len(groups[0])),
               *map(str, files)]
        t0 = time.perf_counter()
        try:
            r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{Path(lib_path).name} ran past {timeout} s under {QEMU}") from None
        if r.returncode != 0:
            why = _gist(r.stderr, f"exit status {r.returncode}")
            raise RuntimeError(f"{Path(lib_path).name} failed under {QEMU}: {why}")
        process_s = time.perf_counter() - t0
        seconds = [float(line.split()[2]) for line in r.stdout.splitlines() if line.startswith("main ")]
        outs = []
        for gi in range(len(groups)):
            first = Path(work) / f"in{gi}_0.bpgt"
            outs.append([read_tensor(p) for p in sorted(first.parent.glob(first.name + ".out*"),
                                                         key=lambda p: int(p.suffix[4:]))])
    return outs, seconds, process_s


def verify(lib_path, inputs, expected) -> str:
    """Run the library on one set of inputs and compare with the reference bit for bit -> the report's state line.

    Missing qemu / toolchain / runtime: the not-verified line with the reason. A mismatch or a crash
    under qemu: RuntimeError (the export fails, as for an llvm library that differs)."""
    try:
        (outs,), (main_s,), process_s = run(lib_path, [inputs])
    except Unavailable as e:
        return f"{NOT_VERIFIED} ({e})"
    if len(outs) != len(expected) or not all(np.array_equal(o, e) and o.dtype == e.dtype
                                             for o, e in zip(outs, expected)):
        raise RuntimeError(f"TVM aarch64 output differs from the reference on the test vectors under {QEMU}")
    return (f"verified bit-exact under {QEMU} (test vectors: main {main_s:.2f} s, qemu process {process_s:.1f} s; "
            f"emulated time, not device time)")
