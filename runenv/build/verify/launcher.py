"""How this host runs a target's programs: directly when it is that platform, linux-aarch64 under qemu-user."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from runenv import settings
from runenv.platforms import Platform, host_platform_key

QEMU = {"linux-aarch64": ("qemu-aarch64-static", "qemu-aarch64")}
# Where an aarch64 glibc may be: Debian's libc6-arm64-cross, or a multiarch libc6:arm64 in the host's root.
SYSROOTS = {"linux-aarch64": ("/usr/aarch64-linux-gnu", "/")}
LOADERS = {"linux-aarch64": "lib/ld-linux-aarch64.so.1"}
SYSROOT_ENV = settings.SYSROOT_ENV


@dataclass(frozen=True)
class Launcher:
    """The command prefix that runs a target executable here (empty: run it directly)."""

    argv: tuple[str, ...] = ()
    emulator: str | None = None  # e.g. "qemu-aarch64-static -L /usr/aarch64-linux-gnu"

    def python(self, exe: Path, *args: str) -> list[str]:
        return [*self.argv, str(exe), *args]

    def script(self, exe: Path, script: Path, flag: str) -> list[str]:
        """A console script: run directly, or under emulation by the interpreter (runenv's scripts are also Python)."""
        return [*self.argv, str(exe), str(script), flag] if self.argv else [str(script), flag]


def find_launcher(platform: Platform) -> tuple[Launcher | None, str]:
    """A launcher for `platform` and how it runs, or None and why the target cannot run here."""
    host = host_platform_key()
    if platform.key == host:
        return Launcher(), f"natively on {host}"
    names = QEMU.get(platform.key)
    if not names or host != "linux-x64":
        return None, f"this host ({host}) cannot run {platform.key} programs"
    qemu = next((found for name in names if (found := shutil.which(name))), None)
    if qemu is None:
        return None, f"no {names[1]} on this host (Debian: qemu-user-static) to run {platform.key} programs"
    given = settings.current().qemu_sysroot
    roots = [given] if given else list(SYSROOTS[platform.key])
    sysroot = next((r for r in roots if (Path(r) / LOADERS[platform.key]).exists()), None)
    if sysroot is None:
        return None, (
            f"{Path(qemu).name} found, but no {platform.arch} C library to run with it (looked in "
            f"{', '.join(roots)}; Debian: libc6-arm64-cross, or set {SYSROOT_ENV})"
        )
    return Launcher((qemu, "-L", sysroot), f"{Path(qemu).name} -L {sysroot}"), f"under {Path(qemu).name} -L {sysroot}"
