"""The package works when installed: a wheel in a fresh venv with NumPy alone decodes the zoo's golden streams."""
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

CHECK = """
import numpy as np
import bpgan
from bpgan.toolkit.zoo import ZOO
assert "site-packages" in str(ZOO), ZOO
for name in ("bpgan-image-light", "bpgan-image-light-c12", "sae-spn-light", "gc-light", "compressgan-light",
             "idf-speech-light", "bpgan-audio-light"):
    golden = ZOO / name / "export"
    header, ints = bpgan.decode_integers((golden / "golden.bpg").read_bytes())
    assert np.array_equal(ints, np.load(golden / "golden.npz")["output"]), name
print("decoded", header.modality, bpgan.decode((ZOO / "bpgan-image-light/export/golden.bpg").read_bytes()).shape)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Built from a clean copy of the tree: a local build/ folder could carry files deleted since."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "build", "*.egg-info",
                                                             "__pycache__", ".hypothesis", "decoder-*.so", "*.onnx"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(src)], check=True, capture_output=True)
    (whl,) = out.glob("bpgan_edge-*.whl")
    return whl


def test_the_wheel_carries_the_zoo_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in ("bpgan-image-light", "bpgan-image-light-c12", "bpgan-audio-light", "sae-spn-light", "gc-light",
                  "compressgan-light", "idf-speech-light"):
        assert f"bpgan/zoo/{entry}/export/program.npz" in names and f"bpgan/zoo/{entry}/export/golden.bpg" in names
    assert "bpgan/__init__.py" in names and "bpgan/firmware_ref/ops/registry.py" in names
    assert not any(n.endswith((".so", ".onnx")) for n in names)  # host-built TVM libraries stay out


def test_a_fresh_venv_with_numpy_alone_decodes_the_golden_streams(wheel, tmp_path):
    import numpy
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run(pip + [str(wheel), f"numpy=={numpy.__version__}"], check=True, capture_output=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "decoded audio (96, 120, 3)"
