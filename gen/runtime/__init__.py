"""Bundle I/O, backends and the Sampler; needs no torch (issue 3 onwards).

`from gen.runtime import Sampler` (as `from gen import Sampler`) loads the sampler module on use, so
importing a submodule such as gen.runtime.manifest stays light."""

__all__ = ["Sampler"]


def __getattr__(name: str):
    if name == "Sampler":
        from gen.runtime.sampler import Sampler

        return Sampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
