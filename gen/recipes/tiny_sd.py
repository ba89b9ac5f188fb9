"""`tiny-sd`: the Stable Diffusion architecture at toy size, random weights, built from configs.

It has every part a real base has (CLIP text encoder and tokenizer, conditional UNet with cross
attention, KL autoencoder with SD's 8x downsampling, SD's scheduler config), so LoRA training,
export, the text-to-image sampler and serving run end to end offline and in seconds. Weights come
from a fixed seed: the same tiny-sd everywhere. Its images are noise-like; it tests plumbing, not taste.
"""

from __future__ import annotations

import tempfile

SEED = 0
IMAGE_SIZE = 64
# SD 1.x's scheduler_config.json (PNDMScheduler with PLMS only), which DDIM/Euler/DPM++ read too.
SCHEDULER_CONFIG = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
                    "steps_offset": 1, "clip_sample": False, "prediction_type": "epsilon",
                    "timestep_spacing": "leading"}


def build_tiny_sd(unet_in_channels: int = 4):
    """A diffusers StableDiffusionPipeline (fp32, CPU, eval mode, no safety checker). With
    `unet_in_channels=9`, an inpainting base's UNet (latents + mask + masked-image latents)."""
    from gen.hf import quiet_hf_logs

    quiet_hf_logs()
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from gen.recipes.clip_vocab import MAX_LENGTH, vocabulary, write_tokenizer_files

    vocab = vocabulary()
    with tempfile.TemporaryDirectory() as d:
        tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer_files(d)))
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8, in_channels=unet_in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64, attention_head_dim=8,
        norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=IMAGE_SIZE, scaling_factor=0.18215)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler.from_config(SCHEDULER_CONFIG), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    for m in (unet, vae, text_encoder):
        m.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe
