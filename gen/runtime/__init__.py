"""Bundle I/O, backends and the Sampler; needs no torch (issue 3 onwards)."""
