"""Installed package versions, for manifests, bench reports and `gen info`."""

from __future__ import annotations

import importlib.metadata as md


def version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def versions(packages) -> dict[str, str | None]:
    return {p: version(p) for p in packages}
