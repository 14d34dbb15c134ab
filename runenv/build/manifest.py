"""The runtime's self-description, `runenv-manifest.toml`: what went in, from where, and what was left out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from runenv.redact import strip_userinfo

FORMAT_VERSION = 1
MANIFEST_NAME = "runenv-manifest.toml"


# Where bytes came from, not what they are: only in the manifest beside the tarball, so that the
# tarball's bytes depend on content alone (the same archive from another mirror packs identically).
PROVENANCE = ("url", "path")


@dataclass(frozen=True)
class InterpreterInfo:
    """Where the interpreter came from: a PBS archive (url, release, flavor) or a local prefix (path)."""

    source: str  # "pbs" or "local"
    sha256: str  # of the archive (pbs) or of the copied prefix's file list and contents (local)
    url: str | None = None
    path: str | None = None
    release: str | None = None
    flavor: str | None = None
    archive: str | None = None


@dataclass(frozen=True)
class PackageEntry:
    """One installed distribution and how it got there."""

    name: str
    version: str
    sha256: (
        str  # of the artifact it was installed from (the wheel, the sdist it was built from, the wheel built from git)
    )
    how: str  # "wheel", "built-from-sdist", "shipped-sdist" or "built-from-vcs"
    index: str | None = None  # the index it came from
    requested: bool = True  # a direct dependency (False: pulled in by another)
    wheel: str | None = None  # the wheel file installed (verify matches allowlist globs against it)
    url: str | None = None  # built-from-vcs: the git repository, without credentials
    commit: str | None = None  # built-from-vcs: the commit it was built from

    def as_json(self) -> dict[str, Any]:
        data = _drop_none(asdict(self))
        if self.index:
            data["index"] = strip_userinfo(self.index)  # credentials are never recorded
        return data


@dataclass(frozen=True)
class SkippedEntry:
    """A package left out on this platform, with the reason."""

    name: str
    reason: str
    platform: str | None = None

    def as_json(self) -> dict[str, Any]:
        return _drop_none(asdict(self))


@dataclass(frozen=True)
class KeptEntry:
    """A package a skip rule names, installed anyway because kept packages (`required_by`) need it."""

    name: str
    reason: str  # the skip rule's reason
    platform: str
    required_by: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "platform": self.platform,
            "required-by": list(self.required_by),
        }


@dataclass
class Manifest:
    """Everything a runtime tarball says about itself; later stages append packages and skips."""

    runtime: str
    python: str
    platform: str
    interpreter: InterpreterInfo
    config_digest: str
    build: dict[str, Any] = field(default_factory=dict)
    packages: list[PackageEntry] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)
    kept: list[KeptEntry] = field(default_factory=list)  # skip rules overridden by a kept package's need
    inputs: dict[str, str] = field(default_factory=dict)  # digests of its inputs (runenv.ops.freshness; only beside it)
    verify: dict[str, Any] | None = None  # results of verifying the packed tarball (only beside it)

    def as_dict(self, *, inside: bool = False) -> dict[str, Any]:
        """The manifest as data; `inside` (the copy in the tarball) leaves out provenance and verify results."""
        interpreter = _drop_none(asdict(self.interpreter))
        if inside:
            interpreter = {k: v for k, v in interpreter.items() if k not in PROVENANCE}
        return {
            "format-version": FORMAT_VERSION,
            "runtime": self.runtime,
            "python": self.python,
            "platform": self.platform,
            "config-digest": self.config_digest,
            "interpreter": interpreter,
            "build": dict(sorted(self.build.items())),
            **({"inputs": dict(sorted(self.inputs.items()))} if self.inputs and not inside else {}),
            "packages": [p.as_json() for p in sorted(self.packages, key=lambda p: p.name)],
            "skipped": [_drop_none(asdict(s)) for s in sorted(self.skipped, key=lambda s: s.name)],
            **({"kept-as-dependency": [k.as_json() for k in self.kept]} if self.kept else {}),
            **({"verify": self.verify} if self.verify is not None and not inside else {}),
        }

    def to_toml(self, *, inside: bool = False) -> str:
        return tomli_w.dumps(self.as_dict(inside=inside))

    def write(self, path: Path, *, inside: bool = False) -> Path:
        path.write_text(self.to_toml(inside=inside), encoding="utf-8")
        return path


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
