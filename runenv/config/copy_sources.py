"""copyFiles sources: relative to the declaring config file's directory, checked, and rewritten relative to the
workspace root so that the merged config no longer needs to know which file declared each entry."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runenv.errors import ConfigError
from runenv.platforms import PLATFORM_KEYS

OWN_DIRS = ("dist", ".runenv")  # runenv's outputs and scratch inside the workspace: never a source


def _entries(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, entry) of every copyFiles entry in one config file's data."""
    packages = data.get("packages", {})
    for i, entry in enumerate(packages.get("copyFiles", [])):
        yield f"packages.copyFiles[{i}]", entry
    for key, block in packages.get("platformSpecific", {}).items():
        if key in PLATFORM_KEYS:
            for i, entry in enumerate(block.get("copyFiles", [])):
                yield f"packages.platformSpecific.{key}.copyFiles[{i}]", entry


def unsafe_link(source: Path, root: Path) -> str | None:
    """Why copying `source` would read outside the workspace `root` or loop (a symlink in it), or None."""
    real_root = root.resolve()
    if not source.resolve().is_relative_to(real_root):
        return f"resolves outside the workspace ({source.resolve()})"
    if not source.is_dir():
        return None
    for directory, dirs, files in os.walk(source):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.is_relative_to(real_root):
                return f"holds {path.relative_to(source)}, a symlink to {target} outside the workspace"
            if target.is_dir() and path.parent.resolve().is_relative_to(target):
                return f"holds {path.relative_to(source)}, a symlink to a directory above it"
    return None


def anchor_copy_sources(data: dict[str, Any], config_path: Path, root: Path) -> dict[str, Any]:
    """`data` (one validated file) with each copyFiles `from` made relative to the workspace `root`.

    A source leaving the workspace (also through a symlink, or one inside a source directory), the
    workspace itself, runenv's own directories, or a missing source is a ConfigError naming the file and
    the JSON path.
    """
    base = config_path.parent.relative_to(root).as_posix()
    for where, entry in _entries(data):
        written = entry["from"]
        rel = posixpath.normpath(posixpath.join(base, written))

        def refuse(why: str, where: str = where, written: str = written) -> ConfigError:
            return ConfigError(f"{config_path}: {where}.from: {written!r} {why}")

        if rel == ".." or rel.startswith("../"):
            raise refuse("leaves the workspace")
        if rel == "." or rel.split("/")[0] in OWN_DIRS:
            raise refuse("is the workspace or runenv's own output, not a source")
        source = root / rel
        if not source.exists() and not source.is_symlink():
            raise refuse(f"does not exist (looked for {source})")
        why = unsafe_link(source, root)
        if why:
            raise refuse(why)
        if not source.exists():
            raise refuse(f"does not exist (a dangling symlink: {source})")
        entry["from"] = rel
    return data
