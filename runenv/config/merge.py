"""Merge of the shared config with a runtime's config (ARCHITECTURE §4), on plain JSON data."""

from __future__ import annotations

from typing import Any

# Lists that accumulate across files (union, order kept, no duplicates); every other list replaces.
UNION_LISTS = frozenset({"additional", "noDeps", "copyFiles", "allowSourceList", "forceNoBinaryList", "onlyBinaryList"})


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in [*first, *second]:
        if item not in out:
            out.append(item)
    return out


def merge(shared: dict[str, Any], runtime: dict[str, Any]) -> dict[str, Any]:
    """`runtime` over `shared`: objects merge key by key, union lists accumulate, the rest is replaced."""
    out = dict(shared)
    for key, value in runtime.items():
        base = out.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            out[key] = merge(base, value)
        elif isinstance(base, list) and isinstance(value, list) and key in UNION_LISTS:
            out[key] = _union(base, value)
        else:
            out[key] = value
    return out


def registry_origins(files: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Index URL -> `file: registries.key[i]` of the config that put it in the merged config.

    `files` are (label, the keys that file sets) in merge order; `default` comes from the last file
    that sets it (it is replaced), `additional` from the first file listing the URL (it is a union).
    """
    origins: dict[str, str] = {}
    setting = [(label, data["registries"]) for label, data in files if isinstance(data.get("registries"), dict)]
    for label, registries in reversed(setting):
        if "default" in registries:
            for i, url in enumerate(registries["default"]):
                origins.setdefault(url, f"{label}: registries.default[{i}]")
            break
    for label, registries in setting:
        for i, url in enumerate(registries.get("additional", [])):
            origins.setdefault(url, f"{label}: registries.additional[{i}]")
    return origins
