"""`Sampler(bundle, backend=...).generate(...)`: one API over every family and backend.

The host draws all noise with numpy from the seed, so a seed gives the same images whichever
backend runs the networks; a family is data in the manifest plus one small routine below.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from gen.errors import GenError
from gen.runtime.backends import Backend, create_backend
from gen.runtime.bundle import load_bundle
from gen.runtime.denoise import denoise

OUTPUTS = ("np", "pil", "uint8")


class Sampler:
    """`bundle` is a bundle directory, or a server URL with backend="triton" and `model=NAME`.

    `backend` is "eager", "ort", "triton", or an already-built Backend instance.
    """

    def __init__(self, bundle, backend="ort", device: str = "cpu", precision: str | None = None,
                 threads: int | None = None, model: str | None = None):
        self.last_timing: dict = {}
        self.remote = None
        self._text = None  # the text-to-image routine, built on first use
        if isinstance(backend, Backend):
            self.bundle, self.backend = backend.bundle, backend
        elif backend == "triton":
            from gen.runtime.remote import RemoteGenerator

            self.remote = RemoteGenerator(str(bundle), model)
        else:
            self.bundle = load_bundle(bundle)
            self.backend = create_backend(backend, self.bundle, device, precision, threads)

    @property
    def family(self) -> str:
        return self.remote.family if self.remote else self.bundle.family

    def generate(self, prompt=None, n: int = 1, seed: int = 0, steps: int | None = None, scheduler: str | None = None,
                 labels: int | Sequence[int] | None = None, guidance: float | None = None, eta: float = 0.0,
                 negative_prompt=None, height: int | None = None, width: int | None = None, output: str = "np"):
        """n images (per prompt, for text-to-image bundles) in [-1, 1] (NCHW float32), as PIL images,
        or as NHWC uint8, per `output`."""
        if output not in OUTPUTS:
            raise GenError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        if isinstance(prompt, (int, np.integer)) and not isinstance(prompt, bool):
            raise GenError(f"generate()'s first argument is the prompt (text-to-image bundles); "
                           f"pass the number of images as n={prompt}")
        text = {"prompt": prompt, "negative_prompt": negative_prompt, "height": height, "width": width}
        if self.remote is not None:
            if eta:
                raise GenError("eta is not a served input; sample with eta in process")
            images = self.remote.generate(n=n, seed=seed, steps=steps, scheduler=scheduler, labels=labels,
                                          guidance=guidance, **text)
            return _convert(images, output)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise GenError(f"n must be a positive integer, got {n!r}")
        family = self.family
        if family == "sd":
            if prompt is None:
                raise GenError("this is a text-to-image bundle: pass a prompt, e.g. generate(\"a red house\")")
            if labels is not None:
                raise GenError("labels apply to class-conditional bundles; this one is conditioned on a prompt")
        else:
            given = [k for k, v in text.items() if v is not None]
            if given:
                raise GenError(f"{given[0]} applies to text-to-image bundles; this is a {family} bundle")
            labels = self._labels(labels, n)
        diffusion = family in ("ddpm", "sd")
        if eta and (not diffusion or (scheduler or self._meta("default_scheduler")) != "ddim"):
            raise GenError(f"eta = {eta} applies to the ddim scheduler only")
        if not diffusion:
            for name, value in (("steps", steps), ("scheduler", scheduler), ("guidance", guidance)):
                if value is not None:
                    raise GenError(f"{name} applies to diffusion bundles; this is a {family} bundle")
        elif guidance is not None and family == "ddpm" and not self.bundle.num_classes:
            raise GenError("guidance needs a class-conditional model; this bundle is unconditional")
        rng = np.random.default_rng(seed)
        before, t0 = self.backend.network_seconds, time.perf_counter()
        if family == "gan":
            z = rng.standard_normal((n, self._meta("z_dim")), dtype=np.float32)
            feeds = {"z": z} if labels is None else {"z": z, "labels": labels}
            images = self.backend.run("generator", feeds)
        elif family == "vae":
            images = self.backend.run("decoder", {"z": rng.standard_normal((n, self._meta("latent_dim")), dtype=np.float32)})
        elif family == "ddpm":
            images = self._diffuse(n, rng, self._scheduler(steps, scheduler, eta), labels, guidance)
        elif family == "sd":
            if self._text is None:
                from gen.runtime.text2image import TextToImage

                self._text = TextToImage(self.backend)
            images = self._text(prompt, negative_prompt, n, rng, self._scheduler(steps, scheduler, eta), guidance, height, width)
        else:
            raise GenError(f"bundle family {family!r} is not supported by this gen version")
        total = time.perf_counter() - t0
        network = self.backend.network_seconds - before
        self.last_timing = {"total_s": total, "network_s": network, "overhead_s": total - network}
        images = np.clip(images, -1.0, 1.0)
        return _convert(images, output)

    def _scheduler(self, steps, scheduler, eta):
        from gen.runtime.schedulers import make_scheduler

        steps = self._meta("default_steps") if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise GenError(f"steps must be at least 1, got {steps!r}")
        name = scheduler or self._meta("default_scheduler")
        try:
            sched = make_scheduler(name, self._meta("scheduler_config"), **({"eta": eta} if name == "ddim" else {}))
            sched.set_timesteps(int(steps))
        except ValueError as e:
            raise GenError(str(e)) from None
        return sched

    def _meta(self, key: str):
        return self.bundle.manifest["sampling"][key]

    def _labels(self, labels, n: int):
        k = self.bundle.num_classes
        if labels is None:
            return (np.arange(n) % k).astype(np.int64) if k else None
        if not k:
            raise GenError("labels given, but this bundle is unconditional")
        arr = np.full(n, labels, dtype=np.int64) if np.ndim(labels) == 0 else np.asarray(labels, dtype=np.int64)
        if arr.shape != (n,):
            raise GenError(f"labels: expected one label or {n}, got {arr.shape[0]}")
        bad = arr[(arr < 0) | (arr >= k)]
        if len(bad):
            raise GenError(f"label {int(bad[0])} is out of range: this model has classes 0..{k - 1}")
        return arr

    def _diffuse(self, n, rng, sched, labels, guidance):
        sampling = self.bundle.manifest["sampling"]
        w = sampling.get("guidance", 1.0) if guidance is None else float(guidance)
        guided = labels is not None and w != 1.0
        cond = labels
        if guided:
            cond = np.concatenate([labels, np.full(n, sampling["null_label"], dtype=np.int64)])
        c, h, wd = self.bundle.image["channels"], self.bundle.image["height"], self.bundle.image["width"]
        x = rng.standard_normal((n, c, h, wd), dtype=np.float32) * np.float32(sched.init_noise_sigma)
        def predict(model_in, t):
            feeds = {"sample": model_in, "timestep": np.full(len(model_in), t, dtype=np.int64)}
            if cond is not None:
                feeds["class_labels"] = cond
            return self.backend.run("denoiser", feeds)

        x = denoise(sched, x, rng, predict, w if guided else None, unconditional_first=False)
        return x


def _convert(images: np.ndarray, output: str):
    if output == "np":
        return images.astype(np.float32, copy=False)
    from gen.images import to_uint8

    u8 = to_uint8(images)
    if output == "uint8":
        return u8
    from PIL import Image

    return [Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im) for im in u8]
