"""What runenv reads from the environment, in one place: every variable, parsed once into `Settings`.

The CLI reads the environment once when a command starts (`use(Settings.from_environ())`), so every
step and thread of that command sees the same values. Library code asks `current()`: the settings of
the running command, or (when runenv is used as a library, outside any command) the environment as
it is at that call. No other module reads `os.environ` for runenv's own variables.

Why a current value instead of a parameter on every function: the values are needed at the leaves
(the cache root, the mirror, the tar timestamps, the emulator's sysroot), and threading one more
argument through every signature between the CLI and those leaves is what made `offline` appear in
seven of them. One frozen object, set at the edge and read where it is needed, keeps the inputs
visible (this module's docstring and type) without that.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

CACHE_ENV = "RUNENV_CACHE_DIR"
SCRATCH_ENV = "RUNENV_SCRATCH_DIR"
MIRROR_ENV = "RUNENV_PBS_MIRROR"
CATALOGUE_ENV = "RUNENV_PBS_CATALOGUE"
SYSROOT_ENV = "RUNENV_QEMU_SYSROOT"
SHIM_ENV = "RUNENV_DISABLE_DISTUTILS_SHIM"
EPOCH_ENV = "SOURCE_DATE_EPOCH"
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """runenv's environment variables, stripped; empty means unset."""

    cache_dir: str = ""  # RUNENV_CACHE_DIR: the cache root (else the platform's user cache directory)
    scratch_dir: str = ""  # RUNENV_SCRATCH_DIR: where builds work (else RAM when it has room, else .runenv/)
    pbs_mirror: str = ""  # RUNENV_PBS_MIRROR: beats python.mirror
    pbs_catalogue: str = ""  # RUNENV_PBS_CATALOGUE: a catalogue file instead of the built-in one
    qemu_sysroot: str = ""  # RUNENV_QEMU_SYSROOT: the aarch64 C library qemu runs with
    source_date_epoch: str = ""  # SOURCE_DATE_EPOCH: the tarball's timestamps (else the PBS release date)
    distutils_shim_off: bool = False  # RUNENV_DISABLE_DISTUTILS_SHIM=1: no shim, as build.distutilsShim false
    publish_user: str = ""  # RUNENV_PUBLISH_USER
    publish_password: str = ""  # RUNENV_PUBLISH_PASSWORD
    publish_token: str = ""  # RUNENV_PUBLISH_TOKEN
    s3_endpoint: str = ""  # RUNENV_S3_ENDPOINT: an S3-compatible server instead of AWS
    publish_target: str = ""  # RUNENV_PUBLISH_TARGET: beats publish.target

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def read(name: str) -> str:
            return env.get(name, "").strip()

        return cls(
            cache_dir=read(CACHE_ENV),
            scratch_dir=read(SCRATCH_ENV),
            pbs_mirror=read(MIRROR_ENV),
            pbs_catalogue=read(CATALOGUE_ENV),
            qemu_sysroot=read(SYSROOT_ENV),
            source_date_epoch=read(EPOCH_ENV),
            distutils_shim_off=read(SHIM_ENV).lower() in TRUE_WORDS,
            publish_user=env.get("RUNENV_PUBLISH_USER", ""),  # credentials as given: a space may be part of them
            publish_password=env.get("RUNENV_PUBLISH_PASSWORD", ""),
            publish_token=env.get("RUNENV_PUBLISH_TOKEN", ""),
            s3_endpoint=read("RUNENV_S3_ENDPOINT"),
            publish_target=read("RUNENV_PUBLISH_TARGET"),
        )


_lock = threading.Lock()
_installed: list[Settings] = []


def current() -> Settings:
    """The running command's settings; outside a command, the environment as it is now."""
    with _lock:
        if _installed:
            return _installed[-1]
    return Settings.from_environ()


@contextlib.contextmanager
def use(settings: Settings) -> Iterator[Settings]:
    """Make `settings` current for every thread until the block ends (the CLI wraps each command in one)."""
    with _lock:
        _installed.append(settings)
    try:
        yield settings
    finally:
        with _lock:
            _installed.remove(settings)
