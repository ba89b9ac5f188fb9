"""Model repositories: names, layout, and configs that satisfy Triton's model-configuration rules."""

import json

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from gen.errors import GenError
from gen.serving.repository import build_repository

ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: mc.TYPE_FP32, onnx.TensorProto.INT64: mc.TYPE_INT64,
                  onnx.TensorProto.FLOAT16: mc.TYPE_FP16}


def parse(path) -> mc.ModelConfig:
    """Parse with Triton's own ModelConfig schema: unknown fields or bad enums fail here."""
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def check_against_onnx(config: mc.ModelConfig, model_path) -> None:
    """The rules Triton applies when it loads an ONNX model with max_batch_size > 0."""
    model = onnx.load(str(model_path))
    graph_io = {v.name: v for v in [*model.graph.input, *model.graph.output]}
    assert config.max_batch_size > 0
    for io in [*config.input, *config.output]:
        v = graph_io[io.name]
        assert ONNX_TO_TRITON[v.type.tensor_type.elem_type] == io.data_type, io.name
        onnx_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        assert onnx_dims[0] == -1  # the batch axis is dynamic and not part of dims
        expected = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
        assert len(onnx_dims[1:]) == len(expected), io.name
        # Triton accepts a config dim where the model's is the same or dynamic (-1)
        assert all(m in (-1, c) for m, c in zip(onnx_dims[1:], expected)), (io.name, onnx_dims, expected)
        if io.HasField("reshape"):
            assert list(io.dims) == [1]


@pytest.mark.parametrize("flavour", ["python", "native"])
def test_configs_follow_tritons_rules(bundles, tmp_path, flavour):
    repo = build_repository([str(bundles["cgan"]), str(bundles["cddpm"])], str(tmp_path / "repo"), flavour=flavour,
                            max_batch=32, instances=3, names=["digits-gan", "digits.ddpm"])
    assert sorted(p.name for p in repo.iterdir() if p.is_dir()) == ["digits-gan", "digits-gan_generator", "digits.ddpm", "digits.ddpm_denoiser"]
    for comp in ("digits-gan_generator", "digits.ddpm_denoiser"):
        cfg = parse(repo / comp / "config.pbtxt")
        assert cfg.name == comp and cfg.max_batch_size == 32 and cfg.HasField("dynamic_batching")
        check_against_onnx(cfg, repo / comp / "1" / "model.onnx")
        if flavour == "native":
            assert cfg.platform == "onnxruntime_onnx" and cfg.backend == ""
            assert cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
            assert not (repo / comp / "1" / "model.py").exists()
        else:
            assert cfg.backend == "python" and (repo / comp / "1" / "model.py").is_file()
    pipe = parse(repo / "digits.ddpm" / "config.pbtxt")
    assert pipe.backend == "python" and pipe.max_batch_size == 0 and pipe.instance_group[0].count == 3
    assert {i.name: i.optional for i in pipe.input} == {"n": False, "seed": True, "steps": True, "scheduler": True,
                                                       "guidance": True, "label": True}
    assert [o.name for o in pipe.output] == ["images", "images_float"]
    assert pipe.parameters["max_n"].string_value == "16"  # guidance doubles the denoiser batch
    assert pipe.parameters["batching"].string_value == "step"  # the default: concurrent requests' steps batched
    assert pipe.parameters["max_rows"].string_value == "32"  # a batched call fits the component's max_batch
    assert json.loads((repo / "gen-repository.json").read_text())["flavour"] == flavour


def test_python_flavour_without_dynamic_batching(bundles, tmp_path):
    repo = build_repository([str(bundles["gan"])], str(tmp_path / "r"), dynamic_batching=False)
    assert not parse(repo / "gan_generator" / "config.pbtxt").HasField("dynamic_batching")


@pytest.mark.parametrize("name", ["../evil", "a/b", "has space", "x;rm -rf", "", ".hidden", "a..b", "$(x)"])
def test_unsafe_model_names_are_refused(bundles, tmp_path, name):
    with pytest.raises(GenError, match="is not a valid model name"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), names=[name])
    assert not (tmp_path / "r").exists()


def test_bad_repository_arguments(bundles, tmp_path):
    with pytest.raises(GenError, match="unknown --flavour 'tensorflow'"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), flavour="tensorflow")
    with pytest.raises(GenError, match="unknown --batching 'token'; choose one of step, request"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), batching="token")
    with pytest.raises(GenError, match="unknown --components 'remote'"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), components="remote")
    with pytest.raises(GenError, match="model names must be unique"):
        build_repository([str(bundles["gan"]), str(bundles["gan"])], str(tmp_path / "r"))
    with pytest.raises(GenError, match="bundle not found"):
        build_repository([str(tmp_path / "nope")], str(tmp_path / "r"))
    # refused at build, not when the started server loads the model (0 is not "the default")
    with pytest.raises(GenError, match=r"--max-steps must be >= 1, got 0 \(leave it out for the default\)"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), limits={"steps": 0, "pixels": None})
    with pytest.raises(GenError, match=r"--threads must be from 1 to 1024, got -1"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"), threads=-1)
    from gen.serving.server import TritonServer

    with pytest.raises(GenError, match="model repository not found: .*nope"):
        TritonServer(str(tmp_path / "nope"))
    build_repository([str(bundles["gan"])], str(tmp_path / "r"))
    with pytest.raises(GenError, match="already exists; pass --force"):
        build_repository([str(bundles["gan"])], str(tmp_path / "r"))
    with pytest.raises(GenError, match="--http-port must be a port number from 1 to 65535, got 99999"):
        TritonServer(str(tmp_path / "r"), http_port=99999)
    with pytest.raises(GenError, match="--http-port and --grpc-port must differ, both are 8000"):
        TritonServer(str(tmp_path / "r"), http_port=8000, grpc_port=8000)
