"""The small ONNX graphs of the device-resident denoising loop (gen.runtime.backends.ort_loop).

They ship as files beside this module, so a deployment host runs them with onnxruntime alone; `build()`
writes them anew with the `onnx` package (a training/export dependency), and a test checks that the
shipped files are what it writes.

- `prepare`: the model input from the sample, x / divisor, repeated for the guidance halves
  (`prepare_condition` also appends the condition's channels, an inpainting UNet's mask and image).
- `step`: classifier-free guidance's mix of the network's halves, then one scheduler step as its
  `StepCoefficients` (gen.runtime.schedulers), in float64 as the host's numpy step computes it.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
NAMES = ("prepare", "prepare_condition", "step")
# the step graph's `coefficients` input, in this order
COEFFICIENTS = ("guidance", "x0_x", "x0_out", "clip", "next_x", "next_out", "next_x0", "next_prev", "next_noise",
                "preview_x", "preview_x0")
OPSET, IR_VERSION = 17, 8  # what onnxruntime >= 1.15 runs


def graph_path(name: str) -> Path:
    return HERE / f"{name}.onnx"


def build(name: str) -> bytes:
    """The serialized model `name` (one of NAMES)."""
    from onnx import TensorProto, checker, helper

    f32, f64, i64 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64
    sample = ["batch", "channels", "height", "width"]
    nodes, inputs, outputs, inits = [], [], [], []

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def const(cname, dtype, values, dims):
        inits.append(helper.make_tensor(cname, dtype, dims, values))
        return cname

    if name.startswith("prepare"):
        inputs = [helper.make_tensor_value_info("sample", f32, sample),
                  helper.make_tensor_value_info("divisor", f32, []),
                  helper.make_tensor_value_info("repeats", i64, [4])]
        model_in = node("Tile", [node("Div", ["sample", "divisor"], "scaled"), "repeats"], "tiled")
        if name == "prepare_condition":
            inputs.append(helper.make_tensor_value_info("condition", f32, ["model_batch", "condition_channels", "height", "width"]))
            model_in = node("Concat", [model_in, "condition"], "joined", axis=1)
        node("Identity", [model_in], "model_input")
        outputs = [helper.make_tensor_value_info("model_input", f32, ["model_batch", "model_channels", "height", "width"])]
    elif name == "step":
        inputs = [helper.make_tensor_value_info("sample", f32, sample),
                  helper.make_tensor_value_info("model_output", f32, ["model_batch", "channels", "height", "width"]),
                  helper.make_tensor_value_info("halves", i64, [2]),
                  helper.make_tensor_value_info("noise", f32, sample),
                  helper.make_tensor_value_info("previous_x0", f64, sample),
                  helper.make_tensor_value_info("coefficients", f64, [len(COEFFICIENTS)])]
        c = {cname: node("Gather", ["coefficients", const(f"at_{cname}", i64, [j], [])], cname, axis=0)
             for j, cname in enumerate(COEFFICIENTS)}
        # guidance: u + w (c - u), u and c the halves at `halves` (both 0 without guidance), in float32 as
        # gen.runtime.denoise mixes them on the host
        split = node("Concat", [const("minus_one", i64, [-1], [1]), node("Shape", ["sample"], "sample_shape")], "split", axis=0)
        halves = node("Reshape", ["model_output", split], "halves_stacked")
        u = node("Gather", [halves, node("Slice", ["halves", const("zero", i64, [0], [1]), const("one", i64, [1], [1])], "u_at")], "u2", axis=0)
        v = node("Gather", [halves, node("Slice", ["halves", "one", const("two", i64, [2], [1])], "c_at")], "c2", axis=0)
        u = node("Squeeze", [u, "zero"], "u")
        v = node("Squeeze", [v, "zero"], "c")
        w = node("Cast", [c["guidance"]], "w32", to=f32)
        mixed = node("Add", [u, node("Mul", [w, node("Sub", [v, u], "c_minus_u")], "w_c_minus_u")], "mixed")
        x = node("Cast", ["sample"], "x64", to=f64)
        out = node("Cast", [mixed], "out64", to=f64)
        noise = node("Cast", ["noise"], "noise64", to=f64)

        def combine(prefix, terms):
            total = None
            for k, (tensor, coefficient) in enumerate(terms):
                term = node("Mul", [tensor, coefficient], f"{prefix}_term{k}")
                total = term if total is None else node("Add", [total, term], f"{prefix}_sum{k}")
            return total

        raw_x0 = combine("x0", [(x, c["x0_x"]), (out, c["x0_out"])])
        # Max/Min rather than Clip: CUDA's Clip reads its bounds from host memory, a copy back each step
        node("Min", [node("Max", [raw_x0, node("Neg", [c["clip"]], "minus_clip")], "x0_above"), c["clip"]], "x0")
        following = combine("next", [(x, c["next_x"]), (out, c["next_out"]), ("x0", c["next_x0"]),
                                     ("previous_x0", c["next_prev"]), (noise, c["next_noise"])])
        node("Cast", [following], "next_sample", to=f32)
        node("Cast", [combine("preview", [(x, c["preview_x"]), ("x0", c["preview_x0"])])], "preview", to=f32)
        outputs = [helper.make_tensor_value_info("next_sample", f32, sample),
                   helper.make_tensor_value_info("x0", f64, sample),
                   helper.make_tensor_value_info("preview", f32, sample)]
    else:
        raise ValueError(f"unknown graph {name!r}; choose one of {', '.join(NAMES)}")
    graph = helper.make_graph(nodes, f"gen_{name}", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gen")
    model.ir_version = IR_VERSION
    checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_all() -> None:
    """Rewrite the shipped graphs: python -c 'from gen.runtime.graphs import write_all; write_all()'"""
    for name in NAMES:
        graph_path(name).write_bytes(build(name))
