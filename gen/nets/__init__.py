"""Network definitions, shared by training and the eager runtime backend.

They live outside trainkit so a host that only runs bundles (eager backend) needs torch and these
files, not the training stack; each net is rebuilt from its JSON config, so weights stay plain
safetensors.
"""
