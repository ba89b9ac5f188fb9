"""The torch side of a family's training: what the shared loop (gen.trainkit.train) calls, as named
hooks with defaults, so a trainer writes only what its family does differently.

    Trainer(config)                       build the nets and optimisers from the run's config (a dict:
                                          the family's TrainConfig fields plus the data's facts)
    .modules / .optimizers                what a checkpoint saves and restores
    .attach_data(data)                    once, before training: held-out images for sample grids
    .initialize()                         once, on a fresh run only (a student starts as its teacher)
    .train_step(batch, g, step) -> dict   one optimisation step; `batch(g)` draws (x, y); returns losses
    .sampling_weights() / .load_sampling_weights(tensors)
                                          what the run ships: `SAMPLED` (attribute -> key prefix) says
                                          which modules, so most trainers write neither
    .sample(n, labels, g, **options)      images in [-1, 1] (the sample grids)
    .grid_steps                           extra grids at these step counts (few-step students)
"""

from __future__ import annotations


class Trainer:
    SAMPLED: dict[str, str] = {}  # attribute holding a module -> its prefix in the run's weights.safetensors
    grid_steps: tuple[int, ...] = ()

    def __init__(self, config: dict):
        self.config = config
        self.modules: dict = {}
        self.optimizers: dict = {}

    def attach_data(self, data) -> None:
        """The training data, once before the first step (nothing by default)."""

    def initialize(self) -> None:
        """A fresh run's first state beyond random weights (nothing by default; not called on --resume)."""

    def train_step(self, batch, g, step: int) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must define train_step")

    def sample(self, n: int, labels, g, **options):
        raise NotImplementedError(f"{type(self).__name__} must define sample")

    def sampling_weights(self) -> dict:
        return {f"{prefix}.{k}": v for attr, prefix in self.SAMPLED.items() for k, v in getattr(self, attr).state_dict().items()}

    def load_sampling_weights(self, tensors: dict) -> None:
        from gen.nets.components import sub_state

        for attr, prefix in self.SAMPLED.items():
            getattr(self, attr).load_state_dict(sub_state(tensors, prefix))
