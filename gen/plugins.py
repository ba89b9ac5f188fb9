"""Plug-ins found by listing a package, and by entry points: every module in the package that
defines `attr` (an instance of `kind`) registers under that object's `name`, and so does every
module an installed distribution names in the entry-point `group` (pytest's `pytest11` pattern). The
family registries of runtime, nets and trainkit use it, so a new family is new modules, in gen or in
a package of its own, never an edit to a list.

A separate package declares its family's modules in its pyproject.toml:

    [project.entry-points."gen.families.runtime"]
    acme = "gen_acme.runtime"      # defines FAMILY (torch-free)
    [project.entry-points."gen.families.nets"]
    acme = "gen_acme.nets"         # defines NETS
    [project.entry-points."gen.families.training"]
    acme = "gen_acme.training"     # defines CONFIG (torch-free: `gen train --help` reads it)
"""

from __future__ import annotations

import importlib
import pkgutil

from gen.errors import GenError

RUNTIME, NETS, TRAINING = "gen.families.runtime", "gen.families.nets", "gen.families.training"


def discover(package_path, package: str, attr: str, kind, group: str | None = None) -> dict:
    """name -> object for gen's own modules of `package`, then the entry points of `group`; a name
    defined twice is refused (a plug-in never silently replaces a family)."""
    found, where = {}, {}
    modules = [f"{package}.{info.name}" for info in pkgutil.iter_modules(package_path)]
    modules += [module for _, module in entry_point_modules(group)] if group else []
    for module_name in modules:
        obj = getattr(importlib.import_module(module_name), attr, None)
        if isinstance(obj, kind) or (isinstance(obj, type) and isinstance(kind, type) and issubclass(obj, kind)):
            if obj.name in found:
                raise GenError(f"model family {obj.name!r} is defined twice: in {where[obj.name]} and in {module_name}; "
                               "uninstall one of the packages")
            found[obj.name], where[obj.name] = obj, module_name
    return found


def entry_point_modules(group: str) -> list[tuple[str, str]]:
    """(name, module) of each installed entry point in `group`."""
    from importlib.metadata import entry_points

    return sorted((ep.name, ep.value.split(":")[0].strip()) for ep in entry_points(group=group))
