"""`runenv python pin`: the archives' sha256 (and a defaulted release) written into a runtime's config.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from runenv.build.interpreter.pbs import MissingArchive, SumsSource, pbs_archive, runtime_release
from runenv.config.load import LoadedConfig, read_json
from runenv.errors import ConfigError
from runenv.files import write_text_atomic
from runenv.platforms import get_platform
from runenv.workspace import Runtime


@dataclass(frozen=True)
class Pins:
    """What `pin_runtime` wrote: the release, a sha256 per pinned platform, and why each other one was not."""

    release: str
    sha256: dict[str, str]
    missing: dict[str, str]


def pin_runtime(loaded: LoadedConfig, sums: SumsSource, platforms: Sequence[str] | None = None) -> Pins:
    """Write `python.sha256` for each platform into config.json, and `python.release` when it was the catalogue's
    default. Hashes come from the catalogue when it knows the archive, else `SHA256SUMS`.

    Platforms asked for by name must all have an archive; by default (`build.platforms`) those the release lacks
    are left out and named in `missing`, and only a release with none of them is an error. Nothing is written
    on error.
    """
    release = runtime_release(loaded)
    pins: dict[str, str] = {}
    missing: dict[str, str] = {}
    first: MissingArchive | None = None
    for key in platforms or list(loaded.config.build.platforms):
        try:
            pins[key] = pbs_archive(_unpinned(loaded, release), get_platform(key), sums).sha256
        except MissingArchive as exc:
            if platforms:
                raise
            missing[key], first = exc.message.split(";")[0], first or exc
    if first is not None and not pins:
        raise first
    write_pins(loaded.runtime, pins, None if loaded.config.python.release else release)
    return Pins(release, pins, missing)


def _unpinned(loaded: LoadedConfig, release: str) -> LoadedConfig:
    """The same config at `release` with its sha256 pins dropped, so pinning reads the release's hashes afresh."""
    python = loaded.config.python.model_copy(update={"sha256": {}, "release": release})
    config = loaded.config.model_copy(update={"python": python})
    return LoadedConfig(loaded.runtime, config, loaded.sources, loaded.digest, loaded.registry_origins)


def write_pins(runtime: Runtime, pins: dict[str, str], release: str | None = None) -> None:
    """Set `python.sha256` (and `python.release` when given) in the runtime's config.json, keeping its other keys.

    Pins of a defaulted release would go stale when a newer catalogue moves the default, so it is written with them.
    """
    path = runtime.config_path
    data = read_json(path)
    python = data.setdefault("python", {})
    if not isinstance(python, dict):
        raise ConfigError(f"{path}: python: expected an object")
    if release:
        python["release"] = release
    python["sha256"] = {**python.get("sha256", {}), **pins}
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
