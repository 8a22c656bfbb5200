"""Export chain: Brevitas -> ONNX (QCDQ) -> integer program -> TVM integer kernels."""
