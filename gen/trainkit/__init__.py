"""Training: GANs, VAEs and diffusion models on bundled or folder data, with runs on disk."""
