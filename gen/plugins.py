"""Plug-ins found by listing a package: every module in it that defines `attr` (an instance of
`kind`) registers under that object's `name`. The family registries of runtime and nets use it, so
a new family is new modules, not an edit to a list."""

from __future__ import annotations

import importlib
import pkgutil


def discover(package_path, package: str, attr: str, kind: type) -> dict:
    found = {}
    for info in pkgutil.iter_modules(package_path):
        module = importlib.import_module(f"{package}.{info.name}")
        obj = getattr(module, attr, None)
        if isinstance(obj, kind):
            if obj.name in found:
                raise ValueError(f"{package}: {obj.name!r} is defined twice")
            found[obj.name] = obj
    return found
