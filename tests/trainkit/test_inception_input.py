"""--inception names what its network must take and give, before any sampling."""

import pytest

from gen.errors import GenError
from gen.trainkit.eval.inception import inception_session


def _network(path, in_shape, out_shape, in_type=None):
    import onnx
    from onnx import TensorProto, helper

    in_type = in_type or TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", in_type, in_shape)
    y = helper.make_tensor_value_info("y", in_type, out_shape)
    shape = helper.make_tensor("s", TensorProto.INT64, [len(out_shape)], [-1 if isinstance(d, str) else d for d in out_shape])
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "g", [x], [y], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every onnxruntime reads
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("in_shape,out_shape,message", [
    (["N", 10], ["N", 10], r"its input 'x' is tensor\(float\) \['N', 10\], not an image batch; the feature network needs one input, float32 images \(N, 3, 299, 299\)"),
    (["N", 1, 28, 28], ["N", 784], r"its input 'x' is tensor\(float\) \['N', 1, 28, 28\], not an image batch"),
    (["N", 3, 299, 299], ["N", 268203], r"its output is \['N', 268203\], not 2048 features per image"),
])
def test_a_network_that_does_not_take_images_is_named(tmp_path, in_shape, out_shape, message):
    path = _network(tmp_path / "bad.onnx", in_shape, out_shape)
    with pytest.raises(GenError, match=rf"--inception {path}: {message}"):
        inception_session(path)


def test_a_fitting_network_opens(tmp_path):
    assert inception_session(_network(tmp_path / "ok.onnx", ["N", 3, 299, 299], ["N", 2048, 1, 1])) is not None
