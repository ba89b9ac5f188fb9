"""Export defaults, stated once: the library and the CLI's --help both read them here (no heavy imports)."""

DEFAULT_OPSET = 17  # ONNX opset: what ORT, TensorRT 8.6+ and Triton 23.x+ all load
DEFAULT_TOLERANCE = 1e-3  # largest eager-vs-ONNX Runtime max |diff| an export accepts
OPSETS = (13, 21)  # the range accepted: 13 has the ops diffusers' UNets need, 21 is the newest ORT 1.17 reads
