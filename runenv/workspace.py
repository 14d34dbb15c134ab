"""The workspace: its root, its runtimes, and where outputs and state go."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runenv.artifact_names import artifact_stem
from runenv.errors import UsageError
from runenv.platforms import minor_of

SHARED_CONFIG = "shared-config.json"
RUNTIME_CONFIG = "config.json"
MAX_VARIANT = 64  # characters; keeps directory, tarball and top-level names well under file-name limits
RUNTIME_DIR_RE = re.compile(
    rf"^python-(?P<version>\d+\.\d+\.\d+)(?:-(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_VARIANT - 1}}}))?$"
)
RUNTIME_NAME_HINT = (
    f"expected python-X.Y.Z or python-X.Y.Z-VARIANT (VARIANT: up to {MAX_VARIANT} letters, digits, '.', '_', '-', "
    "starting with a letter or digit), e.g. python-3.12.10-scientific-slim"
)


@dataclass(frozen=True)
class Runtime:
    """One runtime directory: `python-<version>[-<variant>]/`."""

    name: str  # directory suffix: "3.12.10" or "3.12.10-slim"
    version: str  # full X.Y.Z
    variant: str | None
    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / RUNTIME_CONFIG

    @property
    def minor(self) -> str:
        """`X.Y` of the runtime's Python version."""
        return minor_of(self.version)

    def lock_path(self, platform: str) -> Path:
        return self.directory / f"pylock.{platform}.toml"

    def artifact_stem(self, platform: str) -> str:
        """`python-<runtime>-<platform>`: the tarball's base name and its top-level directory."""
        return artifact_stem(self.name, platform)


def parse_runtime_dir(name: str) -> tuple[str, str | None] | None:
    """(version, variant) for a runtime directory name, or None when it is not one."""
    match = RUNTIME_DIR_RE.match(name)
    if not match:
        return None
    return match["version"], match["variant"]


@dataclass(frozen=True)
class StrayDir:
    """A `python-*` directory that is not a runtime, and why."""

    path: Path
    reason: str

    def warning(self) -> str:
        return f"{self.path.name}/ ignored: {self.reason}"

    def as_json(self) -> dict[str, str]:
        return {"directory": str(self.path), "reason": self.reason}


@dataclass(frozen=True)
class Workspace:
    """A directory holding `shared-config.json` and `python-*/config.json` runtimes."""

    root: Path

    @property
    def shared_config_path(self) -> Path:
        return self.root / SHARED_CONFIG

    @property
    def dist_dir(self) -> Path:
        return self.root / "dist"

    @property
    def state_dir(self) -> Path:
        """`.runenv/`: runenv's own scratch and logs inside the workspace."""
        return self.root / ".runenv"

    def runtimes(self) -> list[Runtime]:
        """Every runtime directory with a config.json, sorted by version then variant."""
        found = []
        for child in self.root.iterdir():
            parsed = parse_runtime_dir(child.name)
            if parsed and child.is_dir() and (child / RUNTIME_CONFIG).is_file():
                version, variant = parsed
                found.append(Runtime(child.name.removeprefix("python-"), version, variant, child))

        def order(rt: Runtime) -> tuple[tuple[int, ...], str]:
            return (tuple(int(p) for p in rt.version.split(".")), rt.variant or "")

        return sorted(found, key=order)

    def stray_dirs(self) -> list[StrayDir]:
        """`python-*` directories that are not runtimes: a name that does not parse, or no config.json."""
        stray = []
        for child in sorted(self.root.iterdir()):
            if not child.name.startswith("python-") or not child.is_dir():
                continue
            if parse_runtime_dir(child.name) is None:
                stray.append(StrayDir(child, "not a runtime name (expected python-X.Y.Z or python-X.Y.Z-VARIANT)"))
            elif not (child / RUNTIME_CONFIG).is_file():
                stray.append(StrayDir(child, f"no {RUNTIME_CONFIG}"))
        return stray

    def runtime(self, name: str) -> Runtime:
        """The runtime named `name` (`3.12.10`, `3.12.10-slim`, or `python-3.12.10`)."""
        wanted = name.removeprefix("python-")
        runtimes = self.runtimes()
        for rt in runtimes:
            if rt.name == wanted:
                return rt
        known = ", ".join(rt.name for rt in runtimes) or "none"
        stray = next((d for d in self.stray_dirs() if d.path.name == f"python-{wanted}"), None)
        raise UsageError(
            f"unknown runtime {name!r} in workspace {self.root}"
            + (f" ({stray.path.name}/ is not a runtime: {stray.reason})" if stray else ""),
            hint=f"runtimes here: {known}",
        )

    def select(self, names: list[str], all_runtimes: bool) -> list[Runtime]:
        """Runtimes named on the command line, or all of them with --all."""
        if all_runtimes and names:
            raise UsageError("give runtime names or --all, not both")
        if all_runtimes:
            return self.runtimes()
        if not names:
            raise UsageError("no runtime given", hint="name one (e.g. 3.12.10) or pass --all")
        return [self.runtime(n) for n in names]


def find_workspace(start: Path | None = None, explicit: Path | None = None) -> Workspace:
    """The workspace at `explicit`, or the nearest ancestor of `start` holding shared-config.json."""
    if explicit is not None:
        root = explicit.resolve()
        if not (root / SHARED_CONFIG).is_file():
            raise UsageError(f"{root} is not a runenv workspace (no {SHARED_CONFIG})")
        return Workspace(root)
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / SHARED_CONFIG).is_file():
            return Workspace(candidate)
    raise UsageError(
        f"no {SHARED_CONFIG} in {here} or any parent directory",
        hint="run inside a runenv workspace or pass --workspace DIR",
    )
