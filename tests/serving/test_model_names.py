"""A repository's model names (pipelines and their NAME_COMPONENT models) are checked for collisions
before anything is written."""


from tests.cli.test_cli import gen_here


def test_a_pipeline_name_that_is_another_bundles_component_model_is_refused_before_writing(bundles, tmp_path):
    out = tmp_path / "repo"
    p = gen_here("serve", "build", bundles["gan"], bundles["gan"], "--name", "x", "--name", "x_generator", "--out", out,
                 check=False)
    assert p.returncode == 2, p.stderr
    assert "--name: the model name 'x_generator' would be both the generator component model of" in p.stderr
    assert not list(tmp_path.iterdir())  # no repository, no lock, no staging folder
