"""Import structure: prior.py never imports context.py, and the metrics leaf imports nothing of the toolkit.

Both are layering rules that nothing else would catch: a cycle or an upward import still works
until someone imports the modules in the other order, so they are checked here directly.
The AST checks see imports at any depth (a function-local import is still a dependency);
the subprocess checks import each module alone in a fresh interpreter, where a cycle would show.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

TOOLKIT = Path(__file__).resolve().parents[1] / "toolkit"


def _imported_modules(path: Path):
    """(level, dotted name) of every import in the file; `from . import x` gives (1, "x")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            found.append((node.level, base))
            found += [(node.level, f"{base}.{a.name}".lstrip(".")) for a in node.names]
    return found


def test_prior_does_not_import_context():
    bad = [(lvl, name) for lvl, name in _imported_modules(TOOLKIT / "codec" / "prior.py")
           if "context" in name.split(".")]
    assert not bad, f"prior.py imports context.py ({bad}): context.py builds on prior.py, not the reverse"


def test_metrics_is_a_leaf():
    bad = [(lvl, name) for lvl, name in _imported_modules(TOOLKIT / "metrics.py")
           if lvl > 0 or name.split(".")[0] == "bpgan"]
    assert not bad, f"toolkit/metrics.py must import nothing from the toolkit, imports {bad}"


@pytest.mark.parametrize("path", ["codec/search.py", "losses/__init__.py"])
def test_codec_and_losses_do_not_import_evaluation(path):
    bad = [name for _, name in _imported_modules(TOOLKIT / path) if "evaluation" in name.split(".")]
    assert not bad, f"{path} imports the evaluation package ({bad}); use ..metrics"


# Each module alone in a fresh interpreter: prior must not pull context in, context must load.
_FRESH = """
import sys, importlib
importlib.import_module(sys.argv[1])
loaded = sorted(m for m in sys.modules if m.startswith("bpgan."))
print(" ".join(loaded))
"""


@pytest.mark.parametrize("module, forbidden", [
    ("bpgan.toolkit.codec.prior", "bpgan.toolkit.codec.context"),
    ("bpgan.toolkit.codec.context", None),
])
def test_codec_modules_import_alone(module, forbidden):
    out = subprocess.run([sys.executable, "-c", _FRESH, module], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert module in loaded
    if forbidden:
        assert forbidden not in loaded, f"importing {module} loaded {forbidden}"


def test_public_names_stay_where_importers_expect_them():
    """codec.py, entropy.py, the tests and the CLI import these names from these modules."""
    from bpgan.toolkit.codec import context, prior

    for name in ("estimate_context_prior", "row_contexts", "symbol_frequencies", "context_ids", "num_contexts"):
        assert hasattr(context, name), name
    for name in ("PRECISION_BITS", "PriorError", "estimate_prior", "check_prior", "cross_entropy_bits",
                 "quantize_frequencies", "load_prior", "save_prior"):
        assert hasattr(prior, name), name
    assert context.symbol_frequencies is prior.symbol_frequencies  # one definition, re-exported
