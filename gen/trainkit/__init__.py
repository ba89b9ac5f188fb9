"""Training: GANs, autoencoders and diffusion models on bundled or folder data, with runs on disk.

    config.py, trainer.py   a family's typed, torch-free training config and the Trainer base its
                            trainer subclasses (the plug-in surface)
    families/<name>/        one package per family: __init__.py its config, trainer.py its trainer,
                            later stages beside them (ddpm/classifier.py, vqvae/prior.py)
    train.py                the loop every family shares: per-step randomness, checkpoints, logs,
                            the time estimate; rundir.py, checkpoint.py, threads.py, distributed.py
    data/                   images, (input, target) pairs, unpaired domains, captions, instance photos
    eval/                   `gen eval`: samples and translations scored on a classifier of the run's data
    distill/                few-step students (progressive, consistency) of a diffusion run
    sd/                     Stable Diffusion adaptations: LoRA, LCM-LoRA, DreamBooth, textual inversion
"""
