"""DDPM nets: denoiser(sample, timestep[, class_labels]) -> model_output (epsilon or v), on
diffusers' UNet2DModel; and the noise schedule a run's config means, which training and the
bundle's manifest both take from here."""

from __future__ import annotations

from torch import nn

from gen.nets.components import image_spec, io_spec, is_conditional
from gen.nets.families import RunNets

SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}  # --schedule -> diffusers' beta_schedule
PREDICTIONS = {"epsilon": "epsilon", "v": "v_prediction"}  # --prediction -> diffusers' prediction_type


def scheduler_config(config: dict) -> dict:
    """The run's DDPMScheduler arguments (diffusers' defaults written out, so readers need no diffusers)."""
    return {"num_train_timesteps": config["timesteps"], "beta_schedule": SCHEDULES[config["schedule"]],
            "beta_start": 0.0001, "beta_end": 0.02, "prediction_type": PREDICTIONS[config["prediction"]],
            "clip_sample": True, "clip_sample_range": 1.0}


class DenoiserComponent(nn.Module):
    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, class_labels=None):
        return self.unet(sample, timestep, class_labels=class_labels).sample


class DdpmNets(RunNets):
    name = "ddpm"

    def build_net(self, c):
        from gen.nets.unet import build_unet, unet_config

        k = c["num_classes"] if is_conditional(c) else 0
        net = build_unet(unet_config(c["image_size"], c["channels"], k, c["widths"], c["attention"]))
        return net, "unet", {"denoiser": DenoiserComponent(net)}

    def signatures(self, c):
        inputs = [image_spec(c, "sample"), io_spec("timestep", "int64", ["batch"], [0, c["timesteps"]])]
        if is_conditional(c):  # one row more than the classes: the null label of classifier-free guidance
            inputs.append(io_spec("class_labels", "int64", ["batch"], [0, c["num_classes"] + 1]))
        return {"denoiser": {"inputs": inputs, "outputs": [image_spec(c, "model_output")]}}

    def sampling(self, c):
        from gen.runtime.families.ddpm import DdpmSampling

        # "trailing" spacing: every step count starts at the last training timestep (pure noise)
        # a student (gen distill) names the scheduler it was distilled for and allows 1..max_steps
        d = c.get("distill") or {}
        student = None if not d else {"method": d["method"], "steps": d["steps"], "max_steps": max(8, 2 * d["steps"]),
                                      "teacher": d["teacher"]}
        return DdpmSampling(scheduler_config={**scheduler_config(c), "timestep_spacing": "trailing",
                                              **d.get("scheduler_config", {})},
                            default_scheduler=d.get("scheduler", "ddim"), default_steps=c["sample_steps"], guidance=c["guidance"],
                            null_label=c["num_classes"] if is_conditional(c) else None, student=student)


NETS = DdpmNets()
