"""Cleanup: what runenv made in a workspace (and its cache), virtual-environment remnants, an audit log."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from runenv import owner
from runenv.artifact_names import ARTIFACT_RE
from runenv.cache import ARTIFACT_PREFIX, CACHE_ENTRIES, PART_PREFIX
from runenv.errors import UsageError
from runenv.ops.unpack import UNPACK_PREFIX
from runenv.owner import TEMP_PREFIX
from runenv.scratch import KINDS as SCRATCH_KINDS
from runenv.scratch import leftovers

# Scratch directories runenv makes under `.runenv/`; anything else there (cleanup.log) is kept.
SCRATCH_DIRS = ("build", "tmp", "verify", "logs")
LOG_NAME = "cleanup.log"
REMNANT_NAME_RE = re.compile(r"^\.?(?:venv|virtualenv|env|python-?env|py-?env)(?:[-_.]?[\w.-]*)?$|^.+[-_.]venv$")
ACTIVATION_SCRIPTS = ("activate", "activate.bat", "Activate.ps1", "activate.fish", "activate.csh")
NEVER_DESCEND = {".git", ".hg", ".svn", "node_modules", "dist", ".runenv", "__pycache__"}

Kind = Literal["artifact", "scratch", "cache", "remnant"]


@dataclass(frozen=True)
class CleanupItem:
    """One path cleanup removes (or would remove), its kind, and its size in bytes."""

    path: Path
    kind: Kind
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "size": self.size}


@dataclass(frozen=True)
class Skipped:
    """A path cleanup leaves alone, and why."""

    path: Path
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass
class CleanupPlan:
    """What to remove, what is kept (remnants without --remnants, files runenv did not make), what is refused."""

    workspace: Path
    items: list[CleanupItem] = field(default_factory=list)
    kept: list[Skipped] = field(default_factory=list)
    refused: list[Skipped] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(item.size for item in self.items)

    def as_json(self, dry_run: bool) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "dryRun": dry_run,
            "items": [i.as_json() for i in self.items],
            "kept": [k.as_json() for k in self.kept],
            "refused": [r.as_json() for r in self.refused],
            "total": self.total,
        }


def tree_size(path: Path) -> int:
    """Bytes of the regular files under `path`, never following symlinks."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        return info.st_size if stat.S_ISREG(info.st_mode) else 0
    total = 0
    for dirpath, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def guard_root(root: Path, what: str) -> Path:
    """`root` resolved; refuses `/` and the home directory (and their parents)."""
    resolved = root.resolve()
    home = Path.home().resolve()
    if resolved == Path(resolved.anchor) or resolved == home or resolved in home.parents:
        raise UsageError(
            f"refusing to clean {what} {resolved}: it is / or the home directory",
            hint="run cleanup inside a runenv workspace of its own",
        )
    return resolved


def is_venv(directory: Path) -> bool:
    """A virtual environment, whatever its name: pyvenv.cfg beside a bin/ or Scripts/ directory."""
    return (directory / "pyvenv.cfg").is_file() and any((directory / d).is_dir() for d in ("bin", "Scripts"))


def is_remnant(directory: Path) -> bool:
    """A virtual environment: a venv by layout, or a venv-like name with activation scripts in bin/ or Scripts/."""
    if is_venv(directory):
        return True
    layouts = [directory / d for d in ("bin", "Scripts") if (directory / d).is_dir()]
    named = REMNANT_NAME_RE.match(directory.name) is not None
    return named and any((d / s).is_file() for d in layouts for s in ACTIVATION_SCRIPTS)


def environments_in_use() -> set[Path]:
    """The environment this runenv runs from and the active one (VIRTUAL_ENV): never offered for removal."""
    candidates = {sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV", "")}
    return {Path(c).resolve() for c in candidates if c}


def find_remnants(root: Path) -> list[Path]:
    """Virtual-environment directories inside the workspace, never following symlinks."""
    found = []
    for dirpath, dirnames, _files in os.walk(root, followlinks=False):
        keep = []
        for name in sorted(dirnames):
            child = Path(dirpath) / name
            if name in NEVER_DESCEND or child.is_symlink():
                continue
            if is_remnant(child):
                found.append(child)
            else:
                keep.append(name)
        dirnames[:] = keep
    return found


def _artifacts(root: Path, plan: CleanupPlan) -> None:
    dist = root / "dist"
    if dist.is_symlink():
        plan.refused.append(Skipped(dist, f"symlink to {os.readlink(dist)}; not followed"))
        return
    if not dist.is_dir():
        return
    for entry in sorted(dist.iterdir()):
        if not ARTIFACT_RE.match(entry.name):
            plan.kept.append(Skipped(entry, "not made by runenv"))
        elif not entry.is_dir() or entry.is_symlink():
            plan.items.append(CleanupItem(entry, "artifact", tree_size(entry)))
        elif (found := owner.state(entry)) == "dead":  # a build's temp dir, left by a killed run
            plan.items.append(CleanupItem(entry, "artifact", tree_size(entry)))
        else:
            why = "in use by a running runenv" if found == "live" else "no runenv owner marker: not made by runenv"
            plan.kept.append(Skipped(entry, why))


def _dead_temporaries(cache: Path | None, temp: Path | None, plan: CleanupPlan) -> None:
    """What killed runs left outside the workspace: partial downloads and unpacks in the cache, temp dirs."""
    found: list[Path] = []
    if cache is not None:
        found += owner.dead_files(cache / "tmp", PART_PREFIX)
        found += owner.dead_dirs(cache / "tmp", ARTIFACT_PREFIX)
        found += owner.dead_dirs(cache / "runtimes", UNPACK_PREFIX)
    if temp is not None:
        found += owner.dead_dirs(temp, TEMP_PREFIX)
    plan.items.extend(CleanupItem(path, "scratch", tree_size(path)) for path in found)


def _scratch(root: Path, plan: CleanupPlan) -> None:
    state = root / ".runenv"
    if state.is_symlink():
        plan.refused.append(Skipped(state, f"symlink to {os.readlink(state)}; not followed"))
        return
    for name in SCRATCH_DIRS:
        path = state / name
        if path.is_symlink():
            plan.refused.append(Skipped(path, f"symlink to {os.readlink(path)}; not followed"))
        elif path.exists():
            running = (
                [c for c in sorted(path.iterdir()) if c.is_dir() and not c.is_symlink() and owner.state(c) == "live"]
                if name in SCRATCH_KINDS and path.is_dir()
                else []
            )
            if not running:
                plan.items.append(CleanupItem(path, "scratch", tree_size(path)))
                continue
            # A build or verify of this workspace is running: only what dead runs left goes.
            plan.kept.extend(Skipped(child, "in use by a running runenv") for child in running)
            plan.items.extend(
                CleanupItem(child, "scratch", tree_size(child))
                for child in sorted(path.iterdir())
                if child not in running
            )


def plan_cleanup(
    workspace_root: Path,
    cache_dir: Path | None = None,
    remnants: bool = False,
    scratch: Path | None = None,
    *,
    whole_cache: bool = False,
    temp: Path | None = None,
) -> CleanupPlan:
    """Decide what cleanup removes; reads sizes once and changes nothing.

    `scratch` is the scratch root builds use when it is not the workspace's `.runenv/` (RAM or
    RUNENV_SCRATCH_DIR), and `temp` the system temp dir: shared by every workspace, so only what dead
    runenv processes left there goes. So it does in `cache_dir`, unless `whole_cache` removes all of runenv's cache.
    """
    root = guard_root(workspace_root, "workspace")
    plan = CleanupPlan(root)
    _artifacts(root, plan)
    _scratch(root, plan)
    if scratch is not None and scratch.resolve() != (root / ".runenv").resolve():
        for kind in SCRATCH_KINDS:
            plan.items.extend(CleanupItem(path, "scratch", tree_size(path)) for path in leftovers(scratch / kind))
    _dead_temporaries(None if whole_cache else cache_dir, temp, plan)
    in_use = environments_in_use()
    for path in find_remnants(root):
        if path.resolve() in in_use:
            plan.kept.append(Skipped(path, "the environment runenv runs from, or the active VIRTUAL_ENV"))
        elif remnants:
            plan.items.append(CleanupItem(path, "remnant", tree_size(path)))
        else:
            plan.kept.append(Skipped(path, "virtual-environment remnant; pass --remnants to remove it"))
    if whole_cache and cache_dir is not None and cache_dir.exists():
        cache = guard_root(cache_dir, "cache")
        if cache == root or cache in root.parents:
            raise UsageError(
                f"refusing to clean cache {cache}: it holds the workspace {root}",
                hint="point RUNENV_CACHE_DIR at a directory of its own",
            )
        for name in CACHE_ENTRIES:  # only what runenv made: the directory may be shared with other files
            entry = cache / name
            if entry.is_symlink():
                plan.refused.append(Skipped(entry, "symlink; not followed"))
            elif entry.exists():
                plan.items.append(CleanupItem(entry, "cache", tree_size(entry)))
    return plan


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def execute(plan: CleanupPlan) -> None:
    """Remove every planned item and append one JSON line per removal to `.runenv/cleanup.log`."""
    state = plan.workspace / ".runenv"
    log = None if state.is_symlink() else state / LOG_NAME
    for item in plan.items:
        _remove(item.path)
        if log is not None:
            log.parent.mkdir(exist_ok=True)
            entry = {
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "path": str(item.path),
                "kind": item.kind,
                "size": item.size,
            }
            with log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
    dist = plan.workspace / "dist"
    if dist.is_dir() and not dist.is_symlink() and not any(dist.iterdir()):
        dist.rmdir()
