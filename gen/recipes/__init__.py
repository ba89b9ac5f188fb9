"""Named model recipes (`--model`): how to get a diffusers pipeline for a name, offline."""
