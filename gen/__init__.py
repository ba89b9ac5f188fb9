"""gen: train, distill, export, run and serve image generators.

Kept import-light on purpose: `import gen` pulls in no torch, so the CLI starts instantly and a
deployment host needs only the runtime layer.
"""

__version__ = "0.1.0"
