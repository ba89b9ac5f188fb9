"""The per-host plan: which backend and precision run each of a bundle's components on *this* host.

The right choice differs by model and by CPU (OpenVINO bf16 is 2.5x ORT on an SD UNet on an AVX-512
BF16 host, and slower than ORT on the digits DDPM's tiny convs; an AVX2 host has no bf16 at all), so
`gen tune` measures it (gen.runtime.tune) and writes it here, and `Sampler(bundle)` with no backend
uses it:

    BUNDLE/plans/<host id>.json     one file per host, the id a hash of gen.runtime.host.fingerprint()

A plan applies only to the host it was measured on and to the bundle as it was when measured (the
manifest's sha256); any other plan found is ignored with a message naming what differs, never
applied. With no plan for this host the default is ONNX Runtime fp32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gen.errors import GenError
from gen.runtime.backends import Backend, backend_names, create_backend
from gen.runtime.manifest import MANIFEST

PLANS = "plans"
SCHEMA = 1
DEFAULT = ("ort", "fp32")  # what runs with no plan for this host: verified everywhere, no extra install


def manifest_digest(bundle) -> str:
    from gen.cache import sha256_of

    return sha256_of(Path(bundle.path) / MANIFEST)


def plan_path(bundle, host_id: str) -> Path:
    return Path(bundle.path) / PLANS / f"{host_id}.json"


@dataclass
class Loaded:
    """The plan for this host, if one applies, and what to tell the user about the choice."""

    plan: dict | None
    note: str
    path: Path | None = None

    def choices(self) -> dict[str, tuple[str, str]]:
        return {c: (v["backend"], v["precision"]) for c, v in self.plan["components"].items()} if self.plan else {}


def load_plan(bundle) -> Loaded:
    """This host's plan for `bundle`, or None with the reason (no plan, a foreign or stale or damaged one)."""
    from gen.runtime.host import differences, fingerprint

    host = fingerprint()
    folder = Path(bundle.path) / PLANS
    mine = plan_path(bundle, host["id"])
    default = f"{DEFAULT[0]} {DEFAULT[1]}"
    if not mine.is_file():
        others = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not others:
            return Loaded(None, f"no plan for this host (run `gen tune {bundle.path}`); running {default}")
        why = []
        for p in others[:3]:
            try:
                theirs = json.loads(p.read_text())["host"]
                why.append(f"{p.name}: " + ("; ".join(differences(host, theirs)) or "another host id"))
            except (OSError, ValueError, KeyError, TypeError):
                why.append(f"{p.name}: unreadable")
        return Loaded(None, f"ignored {len(others)} plan(s) measured on other hosts ({' | '.join(why)}); "
                            f"running {default} (run `gen tune {bundle.path}` here)")
    try:
        plan = read_plan(mine, bundle)
    except GenError as e:
        return Loaded(None, f"ignored {mine}: {e}; running {default}", mine)
    if plan["bundle_manifest_sha256"] != manifest_digest(bundle):
        return Loaded(None, f"ignored {mine}: measured on an earlier export of this bundle (gen.json changed since); "
                            f"running {default} (re-run `gen tune {bundle.path}`)", mine)
    loaded = Loaded(plan, "", mine)
    loaded.note = f"plan for this host ({mine.name}): " + ", ".join(f"{c} {b}/{p}" for c, (b, p) in loaded.choices().items())
    return loaded


def read_plan(path: Path, bundle) -> dict:
    """A plan file, checked: JSON, this schema, every component of the bundle with a backend and
    precision gen knows. A damaged file is an error the caller turns into a stated fallback."""
    from gen.runtime.precision import PRECISIONS

    try:
        plan = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GenError(f"it is damaged ({type(e).__name__}); re-run gen tune") from None
    if not isinstance(plan, dict) or plan.get("schema") != SCHEMA or not isinstance(plan.get("components"), dict) \
            or not isinstance(plan.get("bundle_manifest_sha256"), str):
        raise GenError(f"it is not a gen plan of schema {SCHEMA}; re-run gen tune")
    comps = plan["components"]
    if set(comps) != set(bundle.components):
        raise GenError(f"it plans components {sorted(comps)}, the bundle has {sorted(bundle.components)}")
    for c, v in comps.items():
        if not isinstance(v, dict) or v.get("backend") not in backend_names() or v.get("precision") not in PRECISIONS:
            raise GenError(f"its entry for {c!r} ({v!r}) names no backend/precision gen knows")
    return plan


def write_plan(bundle, plan: dict) -> Path:
    """Atomically, under the bundle's plans/ lock, so two tuners cannot interleave one file."""
    from gen.fileio import write_json
    from gen.outputs import output_lock

    path = plan_path(bundle, plan["host"]["id"])
    with output_lock(path.parent, option="plans/"):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, plan)
    return path


class PlannedBackend(Backend):
    """Each component on the backend/precision its plan chose; one backend per distinct choice.
    The sampling loop runs on the host (gen.runtime.denoise): a device-resident loop belongs to one
    backend, and a mixed plan has several."""

    name = "auto"

    def __init__(self, bundle, choices: dict[str, tuple[str, str]], threads: int | None):
        super().__init__(bundle, "cpu", "+".join(sorted({p for _, p in choices.values()})), threads)
        self.choices = choices
        self._parts: dict[tuple[str, str], Backend] = {}
        try:
            for backend, precision in dict.fromkeys(choices.values()):
                self._parts[(backend, precision)] = create_backend(backend, bundle, "cpu", precision, threads)
        except GenError:
            self.close()
            raise

    def _run(self, component, feeds):
        return self._parts[self.choices[component]]._run(component, feeds)

    def describe(self):
        return {**super().describe(), "components": {c: f"{b}/{p}" for c, (b, p) in self.choices.items()},
                "parts": {f"{b}/{p}": part.describe() for (b, p), part in self._parts.items()}}

    def close(self):
        for part in self._parts.values():
            part.close()
        super().close()


def backend_for(bundle, choices: dict[str, tuple[str, str]], threads: int | None) -> Backend:
    """One backend when the plan chose one combination for every component (so it keeps its own
    features, such as ORT's resident loop), else a PlannedBackend over several."""
    distinct = set(choices.values())
    if len(distinct) == 1:
        backend, precision = distinct.pop()
        return create_backend(backend, bundle, "cpu", precision, threads)
    return PlannedBackend(bundle, choices, threads)


def planned_backend(bundle, threads: int | None) -> tuple[Backend, str]:
    """The backend `Sampler(bundle)` runs with no backend named, and the sentence that says why."""
    loaded = load_plan(bundle)
    if loaded.plan is None:
        return create_backend(DEFAULT[0], bundle, "cpu", DEFAULT[1], threads), loaded.note
    try:
        # the plan's count only where `gen tune --threads N` pinned it; otherwise threads adapt (gen.runtime.threads)
        pinned = loaded.plan.get("threads") if loaded.plan.get("threads_pinned") else None
        return backend_for(bundle, loaded.choices(), threads or pinned), loaded.note
    except GenError as e:  # e.g. the plan chose openvino and it has since been uninstalled
        return create_backend(DEFAULT[0], bundle, "cpu", DEFAULT[1], threads), \
            f"ignored {loaded.path}: {e}; running {DEFAULT[0]} {DEFAULT[1]}"
