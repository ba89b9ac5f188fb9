"""Network definitions; each is rebuilt from its JSON config so weights stay plain safetensors."""
