"""gen: train, distill, export, run and serve image generators.

Kept import-light on purpose: `import gen` pulls in no torch, so the CLI starts instantly and a
deployment host needs only the runtime layer. `from gen import Sampler` loads the runtime on use.
"""

__version__ = "0.1.0"
__all__ = ["Sampler"]


def __getattr__(name: str):
    if name == "Sampler":
        from gen.runtime.sampler import Sampler

        return Sampler
    raise AttributeError(f"module 'gen' has no attribute {name!r}")
