"""Instructions per MAC of the aarch64 kernels, read from the generated assembly (not device time).

python bench/bench_aarch64_asm.py [PROGRAM_DIR ...] [--isa i8mm dotprod generic]
Compiles each program for --target aarch64, disassembles its objects (aarch64-linux-gnu-objdump) and
splits them into basic blocks (a block ends at a branch or starts at a branch target). For every block
that holds dot-product instructions it prints instructions per MAC: the block's instruction count over
its MACs (usdot, sdot: 16 per instruction; a vector multiply-accumulate mla/smlal of .4s: 4). The MAC-weighted
mean over those blocks is the inner loops' cost; loads, address arithmetic and loop control count, but
nothing outside the blocks does (padding, packing, the requantize epilogues). A static count: how
often each block runs, and how fast an aarch64 core issues it, are not measured here (qemu-user 7.2
has no TCG plugins, and emulated time is not device time). The outputs are checked bit-exact under
qemu-aarch64 by tests/test_tvm_aarch64_qemu.py.
"""
import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import describe  # noqa: E402

MACS = {"usdot": 16, "sdot": 16, "udot": 16, "mla": 4, "smlal": 4, "smlal2": 4, "umlal": 4, "umlal2": 4}
BRANCH = re.compile(r"^(b|b\..*|cbz|cbnz|tbz|tbnz|ret|br|blr|bl)$")


def blocks(asm: str):
    """-> [(instructions, MACs)] per basic block of objdump -d text."""
    lines = [ln.split("\t") for ln in asm.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", ln)]
    insns = [(int(parts[0].strip()[:-1], 16), parts[2].split()[0], parts[3] if len(parts) > 3 else "")
             for parts in lines if len(parts) > 2]
    targets = {int(m.group(1), 16) for _, op, args in insns if BRANCH.match(op)
               for m in [re.match(r"\s*([0-9a-f]+)\s*<", args.split(",")[-1])] if m}
    out, count, macs = [], 0, 0
    for addr, op, args in insns:
        if addr in targets and count:
            out.append((count, macs))
            count, macs = 0, 0
        count += 1
        if op in MACS and (op.endswith("dot") or ".4s" in args):
            macs += MACS[op]
        if BRANCH.match(op):
            out.append((count, macs))
            count, macs = 0, 0
    return [b for b in out if b[1]]


def measure(prog_dir: Path, isa: str) -> str:
    from bpgan.export.tvm.lower import compile_program
    from bpgan.firmware_ref.program import load_program
    with tempfile.TemporaryDirectory() as tmp:
        lib = compile_program(load_program(prog_dir), "aarch64", tmp, isa=isa)
        with tarfile.open(lib) as tar:
            tar.extractall(tmp, filter="data")
        asm = "".join(subprocess.run(["aarch64-linux-gnu-objdump", "-d", str(o)], capture_output=True, text=True).stdout
                      for o in sorted(Path(tmp).glob("*.o")))
    found = blocks(asm)
    name = prog_dir.parent.name if prog_dir.name == "export" else prog_dir.name
    if not found:
        return f"{name:24s} {isa:8s} no multiply-accumulate blocks found"
    insns, macs = sum(b[0] for b in found), sum(b[1] for b in found)
    best = min(b[0] / b[1] for b in found)
    return (f"{name:24s} {isa:8s} {len(found):4d} blocks  {insns / macs:.3f} instructions per MAC "
            f"(MAC-weighted; best block {best:.3f})")


def main(argv=None) -> int:
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("programs", nargs="*", type=Path,
                   default=[root / "zoo" / "bpgan-image-light" / "export", root / "zoo" / "bpgan-audio-light" / "export"])
    p.add_argument("--isa", nargs="+", default=["i8mm", "dotprod", "generic"])
    args = p.parse_args(argv)
    if shutil.which("aarch64-linux-gnu-objdump") is None:
        print("needs aarch64-linux-gnu-objdump (apt-get install binutils-aarch64-linux-gnu)", file=sys.stderr)
        return 2
    print(describe())
    print("static count from the generated assembly; not device time")
    for prog in args.programs:
        for isa in args.isa:
            print(measure(prog.parent if prog.name == "program.json" else prog, isa))
    return 0


if __name__ == "__main__":
    sys.exit(main())
