"""Model families, nets side: how each component module is built, from a run or from a bundle,
and its ONNX signature. One module per family in this package, registered by the name its
runtime spec (gen.runtime.families) and trainer (gen.trainkit.families) use.

Export and the eager backend call these; the ONNX graph and the eager module come from the same
code, so they cannot drift. Every module here that defines `NETS` is a plug-in.
"""

from __future__ import annotations

from gen.errors import GenError

_REGISTRY: dict = {}


class Nets:
    """The nets half of a family."""

    name = ""

    def load(self, bundle) -> dict:
        """The bundle's component modules (eval mode, no grad) from its `weights` section."""
        raise NotImplementedError


class RunNets(Nets):
    """Families trained by `gen train`: a run's config rebuilds the nets, its weights fill them.

    `build_net(config)` returns (net, state-dict prefix, {component: module wrapping net});
    `signatures(config)` the I/O of each component; `sampling(config)` the manifest's sampling section.
    """

    def build_net(self, config: dict):
        raise NotImplementedError

    def signatures(self, config: dict) -> dict[str, dict]:
        raise NotImplementedError

    def sampling(self, config: dict):
        raise NotImplementedError

    def build(self, config: dict, tensors: dict | None = None) -> dict:
        """Rebuild a run's inference components from its config, loading sampling weights when given."""
        net, prefix, components = self.build_net(config)
        if tensors is not None:
            from gen.nets.components import sub_state

            net.load_state_dict(sub_state(tensors, prefix))
        for m in components.values():
            m.eval().requires_grad_(False)
        return components

    def manifest(self, config: dict, components: dict | None = None, parity: dict | None = None, precisions=("fp32",)):
        """The typed manifest of a run's bundle, without file-level provenance. With no `components`
        (file entries), the components are the signatures alone: what `gen eval` samples through,
        so evaluation and deployment read the same description."""
        from gen.nets.components import is_conditional
        from gen.runtime.manifest import Component, Conditioning, Image, Manifest, parse

        components = components or self.signatures(config)
        conditional = is_conditional(config)
        return Manifest(
            family=self.name,
            components={k: parse(Component, v, f"components.{k}") for k, v in components.items()},
            sampling=self.sampling(config),
            conditioning=Conditioning(num_classes=config["num_classes"] if conditional else 0,
                                      class_names=list(config.get("class_names", [])) if conditional else []),
            image=Image(channels=config["channels"], height=config["image_size"], width=config["image_size"]),
            precision="fp16" if "fp16" in precisions else "fp32",
            parity=dict(parity or {}),
        )

    def load(self, bundle) -> dict:
        from gen.fileio import load_safetensors, read_json

        w = bundle.manifest.weights
        if "tensors" not in w or "config" not in w:
            raise GenError(f"bundle {bundle.path} has no eager weights (manifest weights lacks tensors/config); "
                           "re-export it or use --backend ort")
        tensors, _ = load_safetensors(bundle.resolve(w["tensors"]))
        return self.build(read_json(bundle.resolve(w["config"]), "bundle weights config"), tensors)


def get_nets(name: str) -> Nets:
    if not _REGISTRY:
        from gen.plugins import NETS, discover

        _REGISTRY.update(discover(__path__, __name__, "NETS", Nets, group=NETS))
    if name not in _REGISTRY:
        raise GenError(f"unknown model family {name!r}; this gen builds nets for {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
