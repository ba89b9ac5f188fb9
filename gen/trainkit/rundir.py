"""A run directory on disk: config, weights, resumable state, metrics log and sample grids.

    RUN/config.json          everything needed to rebuild the nets (family, data, sizes, hyper-params)
    RUN/weights.safetensors  what sampling needs (EMA weights for diffusion), with the config as metadata
    RUN/state.safetensors    every module, optimizer and EMA tensor plus the step, for --resume
    RUN/metrics.jsonl        one JSON object per logged step
    RUN/samples/step_N.png   sample grids during training; RUN/samples.png the final grid
    RUN/samples_<k>steps.png a few-step student's final grid at k steps (gen distill)
    RUN/eval.json            written by `gen eval`
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from gen.errors import GenError
from gen.fileio import load_safetensors, read_json, save_safetensors, write_bytes, write_json

RUN_FILES = ("config.json", "weights.safetensors", "state.safetensors", "metrics.jsonl", "samples.png", "eval.json",
             "lora.safetensors", "samples_before.png", "samples_after.png",  # `gen train sd-lora|dreambooth --lora`
             "learned_embeds.safetensors",  # `gen train textual-inversion`
             "model_index.json")  # a full `gen train dreambooth`: a diffusers pipeline folder
STEP_GRID = re.compile(r"samples_(\d+)steps\.png")  # a few-step student's grid at each step count
# what --force replaces; anything else in a replaced run is carried over as the user's own
RUN_DIRS = ("samples", "class_images", "unet", "vae", "text_encoder", "tokenizer", "scheduler", "feature_extractor",
            "safety_checker")
# what a run writes before its first checkpoint or result: a run holding nothing else has nothing to keep
BEFORE_CHECKPOINT = ("config.json", "metrics.jsonl", "samples", "samples_before.png", "class_images")


def written_by_gen(name: str) -> bool:
    return name in RUN_FILES or name in RUN_DIRS or bool(STEP_GRID.fullmatch(name))


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    weights_path = property(lambda self: self.path / "weights.safetensors")
    state_path = property(lambda self: self.path / "state.safetensors")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    eval_path = property(lambda self: self.path / "eval.json")

    def is_run(self) -> bool:
        """A folder gen trained into: its config.json is a JSON object naming a family (a model
        folder from elsewhere can have a config.json too, and --force must not take it for a run)."""
        if not self.config_path.is_file():
            return False
        try:
            config = json.loads(self.config_path.read_text())
        except (OSError, ValueError):
            return True  # gen's own config.json, damaged: read_config says so by name
        return isinstance(config, dict) and "family" in config

    def check(self, resume: bool, force: bool, resumable: bool = True, sources=()) -> None:
        """Refuse a directory that would be overwritten or cannot be resumed; changes nothing.
        `resumable`: whether the command has --resume (the SD trainers do not), for the message;
        `sources`: the command's inputs (teacher run, data folder, base), which the run must not overlap."""
        from gen.outputs import refuse_sources

        refuse_sources(self.path, sources)
        if resume and force:
            raise GenError("--resume and --force contradict each other: --resume continues the run, --force replaces it")
        if resume:
            if not self.is_run():
                raise GenError(f"--resume: {self.path} holds no run (no config.json); drop --resume to start one")
            if self.unstarted():
                raise GenError(f"--resume: {self.path} stopped before its first checkpoint, so there is nothing to "
                               "resume; run the same command without --resume to start it again")
            if not self.state_path.is_file():
                raise GenError(f"--resume: {self.path} has no state.safetensors checkpoint to resume from")
            return
        if self.path.exists() and not self.path.is_dir():
            raise GenError(f"--out {self.path} exists and is not a directory")
        if self.unstarted():
            return  # a killed run's leftovers: `claim` clears them under the lock (a live writer holds it)
        if self.path.is_dir() and any(self.path.iterdir()):
            if not force:
                what = "another run" if self.is_run() else "other files"
                raise GenError(
                    f"--out {self.path} already holds {what}; pass "
                    + ("--resume to continue it, " if resumable else "")
                    + "--force to replace it, or choose another --out"
                )
            if not self.is_run():
                raise GenError(f"--force: {self.path} holds files that are not a gen run; refusing to delete them")
            from gen.outputs import refuse_current_dir

            refuse_current_dir(self.path)

    def claim(self, force: bool) -> "RunDir":
        """The directory a new run is written in. Replacing a run (--force) writes beside it, in
        `.NAME.new-PID`, and `commit` swaps it in at the end, so the old run survives until the new
        one is complete: a full disk, a kill or a diverged loss costs only the new run.

        Called only after the new run's data and config have been validated, under the output's lock.
        """
        self.discard_unstarted(keep_dir=True)
        if force and self.is_run():
            from gen.outputs import absolute

            target = absolute(self.path)
            work = RunDir(target.parent / f".{target.name}.new-{os.getpid()}")
            shutil.rmtree(work.path, ignore_errors=True)
            work.path.mkdir()
            return work
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def unstarted(self) -> bool:
        """gen's own run that stopped before its first checkpoint (killed, even by SIGKILL, which no
        cleanup sees): only its config, logs and sample grids, all gen's, so nothing to resume or keep.
        A new run takes its place without --force; whether its writer still lives, the lock says."""
        if not self.is_run():
            return False
        return all(e.name in BEFORE_CHECKPOINT for e in self.path.iterdir())

    def discard_unstarted(self, keep_dir: bool) -> bool:
        """A new run stopped before its first checkpoint holds only its config and logs: nothing to
        resume, yet its config.json would refuse the next try (--resume has no checkpoint, a plain run
        sees "another run"). Remove what gen wrote there (another's files stay, and the folder itself
        with `keep_dir`: it was there before); True if it did."""
        if not self.path.is_dir() or self.state_path.is_file() or self.weights_path.is_file():
            return False
        started = self.is_run()
        if started:
            for entry in self.path.iterdir():
                if written_by_gen(entry.name):
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        if not keep_dir and not any(self.path.iterdir()):
            self.path.rmdir()  # made by this run (and empty): a failure before its config leaves nothing either
        return started

    def commit(self, work: "RunDir") -> None:
        """Put a finished run written by `claim` in place; files gen did not write stay with it."""
        if work.path == self.path:
            return
        from gen.outputs import replace_dir

        def keep_foreign(old: Path, new: Path) -> None:  # after the swap: a kill before it loses nothing
            for entry in old.iterdir():
                if not written_by_gen(entry.name) and not (new / entry.name).exists():
                    os.replace(entry, new / entry.name)

        replace_dir(work.path, self.path, keep=keep_foreign)

    # -- config -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        write_json(self.config_path, config)

    def read_config(self) -> dict:
        if not self.path.is_dir():
            raise GenError(f"run directory not found: {self.path}")
        if not self.config_path.is_file():
            from gen.runtime.manifest import MANIFEST

            if (self.path / MANIFEST).is_file():  # the commands that take a bundle read it as one
                raise GenError(f"{self.path} is an exported bundle ({MANIFEST}), not a run: give the run directory "
                               "it was exported from (`gen train` wrote it)")
            raise GenError(f"{self.path} is not a gen run (no config.json); train one with `gen train`")
        return check_config(read_json(self.config_path, "run config"), self.config_path)

    # -- metrics log --------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill; the records before it are intact
        return out

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop records logged after the checkpoint so the log reads as one run."""
        keep = [r for r in self.metrics() if r.get("step", 0) <= step]
        write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep).encode())

    # -- tensors ------------------------------------------------------------------------------
    def save_weights(self, tensors: dict, config: dict) -> None:
        meta = {"format": "gen-weights/1", "family": config["family"], "config": json.dumps(config, sort_keys=True)}
        save_safetensors(self.weights_path, tensors, meta)

    def load_weights(self) -> dict:
        if not self.weights_path.is_file():
            if self.is_run():
                from gen.trainkit.sd import refuse_sd_run

                refuse_sd_run(self.read_config().get("family"), self.path)
            raise GenError(f"{self.path} has no weights.safetensors yet; let `gen train` finish or --resume it")
        tensors, _ = load_safetensors(self.weights_path)
        return tensors

    def save_state(self, tensors: dict, meta: dict[str, str]) -> None:
        save_safetensors(self.state_path, tensors, meta)

    def build_components(self):
        """(config, the family's nets spec, the inference components with the run's sampling weights):
        what export traces and `gen eval` samples through."""
        from gen.nets.families import get_nets

        config = self.read_config()
        tensors = self.load_weights()
        nets = get_nets(config.get("family", "?"))
        try:
            return config, nets, nets.build(config, tensors)
        except RuntimeError as e:
            raise GenError(f"{self.weights_path} does not match {self.config_path}: {str(e).splitlines()[0]}") from None

    def load_state(self) -> tuple[dict, dict[str, str]]:
        return load_safetensors(self.state_path)


# what every run of a trained family records about its data (build_config writes them)
DATA_KEYS = {"image_size": int, "channels": int, "num_classes": int, "steps": int, "seed": int}


def check_config(config, path) -> dict:
    """A run config with the keys and types its family's trainer declares, or an error naming the
    key: a damaged config.json is refused here, not met as a KeyError deep inside export or eval."""
    from gen.trainkit.families import defaults, families

    def bad(message):
        raise GenError(f"run config {path} {message}; restore it or re-create the run")

    if not isinstance(config, dict) or not isinstance(config.get("family"), str):
        bad("has no 'family'")
    if config["family"] not in families():
        return config  # runs of other kinds (sd-lora) are read by their own code
    expected = {**DATA_KEYS, **{k: type(v) for k, v in defaults(config["family"]).items() if v is not None}}
    for key, kind in expected.items():
        if key not in config:
            bad(f"lacks {key!r}")
        value = config[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else \
            isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            bad(f"has {key} = {value!r}, expected {kind.__name__}")
    return config

