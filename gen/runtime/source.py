"""The `Source` interface a Sampler generates from (gen.runtime.sources explains the seam): its own
module, below both kinds of source, so the local one (sources.py) and the served one (remote.py)
import it and neither imports the other's module to learn it."""

from __future__ import annotations

import numpy as np

from gen.runtime.backends import Backend
from gen.runtime.bundle import Bundle


class Source:
    """The interface; the class attributes are a source's answers where it has nothing to say."""

    family = ""
    bundle: Bundle | None = None  # the bundle this process runs, where it runs one
    backend: Backend | None = None  # ... and the backend running it
    limits = None  # gen.runtime.families.Limits one call may ask for; None where a server enforces its own
    plan_note: str | None = None  # why this backend (Sampler's backend="auto")
    takes_on_step = False  # generate(on_step=...) is called after each diffusion step
    previews = False  # ... with an x0 that preview() turns into images worth showing
    required: tuple[str, ...] = ()  # arguments a call must give (e.g. pix2pix's image)

    def generate(self, arguments: dict, on_step=None) -> np.ndarray:
        """Images in [-1, 1], NCHW float32, for generate()'s keywords (prompt, n and seed included)."""
        raise NotImplementedError

    def reconstruct(self, images) -> np.ndarray:
        """`images` through an autoencoder, as generate() returns them."""
        raise NotImplementedError

    def check(self, arguments: dict) -> None:
        """Refuse bad arguments without generating, as generate() would; a source that cannot tell
        before running (a server checks its own) lets them through."""

    def unavailable(self) -> str:
        """Why requests cannot be served now, or "" when they can."""
        return ""

    def precisions(self) -> list[str]:
        """The precisions a caller may choose between (a new Sampler each); [] where they are fixed."""
        return []

    def info(self) -> dict:
        """What a page shows: family, source, arguments (names), precisions, image, previews, limits..."""
        raise NotImplementedError

    def preview(self, x0: np.ndarray) -> np.ndarray:
        """A step's x0 (what on_step gets) as images in [-1, 1], NCHW; where `previews` is true."""
        return x0

    def batch_steps(self) -> None:
        """Let concurrent generate() calls run their diffusion steps as one batch; here nothing (a served
        model's server batches, gen serve build --batching)."""

    def argument(self, name: str) -> dict:
        """What this model adds to the declaration of one argument it takes (its choices, its default)."""
        return {}

    def describe(self) -> dict:
        """What actually runs (for reports)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release sessions, connections and memory."""
