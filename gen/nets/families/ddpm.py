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


def noise_scheduler(config: dict):
    """diffusers' DDPMScheduler on the schedule the bundle's manifest records (one definition): the
    forward process the DDPM and its noisy classifier (gen.trainkit.families.ddpm.classifier) both train on."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**scheduler_config(config))


class DenoiserComponent(nn.Module):
    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, class_labels=None):
        return self.unet(sample, timestep, class_labels=class_labels).sample


class GuidedDdpm(nn.Module):
    """A classifier run's weights (gen train noisy-classifier): the DDPM's UNet and the noisy classifier."""

    def __init__(self, unet: nn.Module, classifier: nn.Module):
        super().__init__()
        self.unet, self.classifier = unet, classifier


def has_classifier(config: dict) -> bool:
    return config.get("stage") == "classifier"


def build_denoiser_unet(c: dict) -> nn.Module:
    """The run's UNet2DModel (class-conditional when the run is), as training and export build it."""
    from gen.nets.unet import build_unet, unet_config

    return build_unet(unet_config(c["image_size"], c["channels"], c["num_classes"] if is_conditional(c) else 0,
                                  c["widths"], c["attention"]))


def build_noisy_classifier(c: dict) -> nn.Module:
    """A classifier run's p(y | x_t, t) (gen train noisy-classifier)."""
    from gen.nets.noisy_classifier import NoisyClassifier

    return NoisyClassifier(c["channels"], c["num_classes"], c["image_size"], c["classifier_width"])


class DdpmNets(RunNets):
    name = "ddpm"

    def build_net(self, c):
        unet = build_denoiser_unet(c)
        if not has_classifier(c):
            return unet, "unet", {"denoiser": DenoiserComponent(unet)}
        from gen.nets.noisy_classifier import InputGradient

        net = GuidedDdpm(unet, build_noisy_classifier(c))
        return net, "", {"denoiser": DenoiserComponent(unet), "classifier_grad": InputGradient(net.classifier)}

    def signatures(self, c):
        timestep = io_spec("timestep", "int64", ["batch"], [0, c["timesteps"]])
        inputs = [image_spec(c, "sample"), timestep]
        if is_conditional(c):  # one row more than the classes: the null label of classifier-free guidance
            inputs.append(io_spec("class_labels", "int64", ["batch"], [0, c["num_classes"] + 1]))
        sigs = {"denoiser": {"inputs": inputs, "outputs": [image_spec(c, "model_output")]}}
        if has_classifier(c):  # grad_x log p(labels | sample, timestep), for classifier guidance
            sigs["classifier_grad"] = {
                "inputs": [image_spec(c, "sample"), timestep, io_spec("labels", "int64", ["batch"], [0, c["num_classes"]])],
                "outputs": [image_spec(c, "grad")]}
        return sigs

    def sampling(self, c):
        from gen.runtime.families.ddpm import DdpmSampling

        # "trailing" spacing: every step count starts at the last training timestep (pure noise)
        # a student (gen distill) names the scheduler it was distilled for and allows 1..max_steps
        d = c.get("distill") or {}
        classifier = None if not has_classifier(c) else {
            "num_classes": c["num_classes"], "class_names": list(c.get("class_names", [])), "scale": c["classifier_scale"],
            "scheduler": None if c.get("distill") else "ddpm"}  # a student keeps the sampler it was distilled for
        student = None if not d else {"method": d["method"], "steps": d["steps"], "max_steps": max(8, 2 * d["steps"]),
                                      "teacher": d["teacher"]}
        return DdpmSampling(scheduler_config={**scheduler_config(c), "timestep_spacing": "trailing",
                                              **d.get("scheduler_config", {})},
                            default_scheduler=d.get("scheduler", "ddim"), default_steps=c["sample_steps"], guidance=c["guidance"],
                            null_label=c["num_classes"] if is_conditional(c) else None, student=student,
                            classifier=classifier)


NETS = DdpmNets()
