"""Step 1: the Brevitas generator -> a standard ONNX QCDQ file, checked by onnx.checker and ONNX Runtime."""
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

# ONNX Runtime 1.31 reads IR <= 13; some onnx helpers write newer IR, so pin what we save.
MAX_IR_VERSION = 10
OPSET = 13
INPUT_NAME, OUTPUT_NAME = "latent", "output"


def export_qcdq(generator: torch.nn.Module, in_channels: int, path, sample_hw=(4, 6)) -> Path:
    """Write generator as QCDQ ONNX with dynamic spatial size; the input is the float latent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.zeros(1, in_channels, *sample_hw)
    dyn = {2: "h", 3: "w"} if len(sample_hw) == 2 else {2: "t"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # brevitas warns about optional CUDA kernels on this import
        from brevitas.export import export_onnx_qcdq
        # TorchScript exporter: the dynamo one refuses Brevitas's quantized (int32) biases.
        export_onnx_qcdq(generator.eval(), args=sample, export_path=str(path), opset_version=OPSET,
                         dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                         dynamic_axes={INPUT_NAME: dyn, OUTPUT_NAME: dyn})
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def custom_ops(path) -> list:
    """Ops outside the standard ONNX domain (e.g. bpgan.ArgmaxUnpool), which ONNX Runtime cannot run."""
    return sorted({f"{n.domain}.{n.op_type}" for n in onnx.load(str(path)).graph.node
                   if n.domain not in ("", "ai.onnx")})


def ort_session(path, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_vs_fake_quant(path, generator: torch.nn.Module, latent_float: np.ndarray) -> float:
    """max |ORT(QCDQ) - Brevitas fake-quant| on one latent (ORT's QuantizeLinear rounds ties to even);
    the graph must have no custom_ops (ONNX Runtime has no kernel for them)."""
    sess = ort_session(path)
    got = sess.run(None, {INPUT_NAME: latent_float.astype(np.float32)})[0]
    with torch.no_grad():
        want = generator.eval()(torch.from_numpy(latent_float.astype(np.float32))).numpy()
    return float(np.abs(got - want).max())
