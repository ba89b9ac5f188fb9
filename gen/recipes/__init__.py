"""Named model recipes (`--model`): how to get a diffusers pipeline for a name, offline."""

import os

# transformers warns at import time about optional image backends SD never uses; gen's recipes are
# imported before transformers, so this keeps those notices out of every command's output.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
