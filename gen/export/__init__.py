"""torch -> ONNX bundles, precision conversion and TensorRT engines (issue 3 onwards)."""
