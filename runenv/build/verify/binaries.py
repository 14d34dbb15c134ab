"""Reading native files (ELF, Mach-O, PE) into what the static checks need: format, architecture, the shared
libraries each needs, its search paths, versioned symbol needs and the minimum OS.

Parsing is left to well-kept libraries (pyelftools, macholib, pefile: pure Python, so runenv installs the same
way on every host; auditwheel uses pyelftools too). Only the headers and tables needed are read.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Format = Literal["elf", "macho", "pe"]

ELF_MAGIC = b"\x7fELF"
MACHO_MAGICS = {b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce"}
FAT_MAGICS = {b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}
ELF_MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_386": "i686", "EM_ARM": "arm"}
MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "i686", 12: "arm", 0x0200000C: "arm64_32"}
PE_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "i686", 0x1C4: "arm", 0xA641: "arm64ec"}


@dataclass(frozen=True)
class Needed:
    """One shared library a native file names: as written, and whether the loader may go without it."""

    name: str
    optional: bool = False  # Mach-O weak dylibs, PE delay-loaded DLLs


@dataclass(frozen=True)
class NativeFile:
    """What one native file says about itself (for a universal Mach-O file: the slice for the target)."""

    format: Format | None  # None: not a valid file of any known format
    archs: tuple[str, ...] = ()  # every architecture in the file (several only in universal Mach-O files)
    needed: tuple[Needed, ...] = ()
    rpaths: tuple[str, ...] = ()  # ELF RUNPATH (or RPATH when there is none), Mach-O LC_RPATH
    versions: tuple[tuple[str, str], ...] = ()  # ELF (library, version) needs, e.g. ("libc.so.6", "GLIBC_2.28")
    min_os: str | None = None  # Mach-O minimum macOS version
    error: str | None = None  # why the file could not be read

    @property
    def arch(self) -> str | None:
        return self.archs[0] if len(self.archs) == 1 else None

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "archs": list(self.archs),
            "needed": [[n.name, n.optional] for n in self.needed],
            "rpaths": list(self.rpaths),
            "versions": [list(v) for v in self.versions],
            "minOs": self.min_os,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NativeFile:
        """The file `as_json` described (KeyError, TypeError or ValueError when it is not one)."""
        found = data["format"]
        if found not in (None, "elf", "macho", "pe"):
            raise ValueError(f"unknown format {found!r}")
        return cls(
            found,
            tuple(str(a) for a in data["archs"]),
            tuple(Needed(str(name), bool(optional)) for name, optional in data["needed"]),
            tuple(str(p) for p in data["rpaths"]),
            tuple((str(library), str(version)) for library, version in data["versions"]),
            None if data["minOs"] is None else str(data["minOs"]),
            None if data["error"] is None else str(data["error"]),
        )


def sniff(path: Path) -> Format | None:
    """The format the first bytes announce (a fat header is told apart from a Java class by its arch count)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head[:4] == ELF_MAGIC:
        return "elf"
    if head[:4] in MACHO_MAGICS or (head[:4] in FAT_MAGICS and 0 < struct.unpack(">I", head[4:8])[0] < 20):
        return "macho"
    if head[:2] == b"MZ":
        return "pe"
    return None


def read_native(path: Path, expected: Format, arch: str) -> NativeFile:
    """Parse `path` as the `expected` format; `arch` picks the slice of a universal Mach-O file."""
    found = sniff(path)
    if found != expected:
        what = {"elf": "an ELF file", "macho": "a Mach-O file", "pe": "a PE file"}
        return NativeFile(found, error=f"not {what[expected]}" + (f" (it is {what[found]})" if found else ""))
    try:
        return {"elf": _read_elf, "macho": _read_macho, "pe": _read_pe}[expected](path, arch)
    except Exception as exc:  # the parsers raise many types on damaged files; each means the same here
        return NativeFile(None, error=f"damaged {expected.upper() if expected != 'macho' else 'Mach-O'} file: {exc}")


def _read_elf(path: Path, arch: str) -> NativeFile:
    from elftools.elf.dynamic import DynamicSegment
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    with path.open("rb") as fh:
        elf = ELFFile(fh)
        machine = ELF_MACHINES.get(elf["e_machine"], str(elf["e_machine"]))
        if machine in ("x86_64", "aarch64") and elf.elfclass != 64:
            machine = {"x86_64": "x32", "aarch64": "aarch64_ilp32"}[machine]
        needed: list[Needed] = []
        runpath: list[str] = []
        rpath: list[str] = []
        versions: list[tuple[str, str]] = []
        for segment in elf.iter_segments("PT_DYNAMIC"):  # a few program headers: cheaper than every section
            if not isinstance(segment, DynamicSegment):
                continue
            for tag in segment.iter_tags():
                kind = tag.entry.d_tag
                if kind not in ("DT_NEEDED", "DT_RUNPATH", "DT_RPATH"):
                    continue
                text = str(getattr(tag, kind[3:].lower()))  # pyelftools sets .needed, .runpath, .rpath per tag
                if kind == "DT_NEEDED":
                    needed.append(Needed(text))
                elif kind == "DT_RUNPATH":
                    runpath += text.split(":")
                else:
                    rpath += text.split(":")
        section = elf.get_section_by_name(".gnu.version_r") if needed else None
        if isinstance(section, GNUVerNeedSection):
            for verneed, auxes in section.iter_versions():
                versions += [(verneed.name, aux.name) for aux in auxes if verneed.name is not None]
    return NativeFile("elf", (machine,), tuple(needed), tuple(p for p in runpath or rpath if p), tuple(versions))


def exports_symbol(path: Path, name: str) -> bool:
    """Whether an ELF file defines the dynamic symbol `name` (a GNU hash lookup when it has the table)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.hash import GNUHashSection
    from elftools.elf.sections import SymbolTableSection

    with contextlib.suppress(Exception), path.open("rb") as fh:
        elf = ELFFile(fh)
        table = elf.get_section_by_name(".gnu.hash")
        if isinstance(table, GNUHashSection):
            symbol = table.get_symbol(name)
        else:
            dynsym = elf.get_section_by_name(".dynsym")
            found = dynsym.get_symbol_by_name(name) if isinstance(dynsym, SymbolTableSection) else None
            symbol = found[0] if found else None
        return symbol is not None and symbol["st_shndx"] != "SHN_UNDEF"
    return False


def _macos_version(packed: int) -> str:
    major, minor, patch = packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


def _read_macho(path: Path, arch: str) -> NativeFile:
    from macholib import mach_o
    from macholib.MachO import MachO

    loads = {
        mach_o.LC_LOAD_DYLIB: False,
        mach_o.LC_REEXPORT_DYLIB: False,
        mach_o.LC_LOAD_UPWARD_DYLIB: False,
        mach_o.LC_LAZY_LOAD_DYLIB: True,
        mach_o.LC_LOAD_WEAK_DYLIB: True,
    }
    headers = MachO(str(path)).headers
    archs = tuple(MACHO_CPUS.get(int(h.header.cputype), hex(int(h.header.cputype))) for h in headers)
    if arch not in archs:
        return NativeFile("macho", archs)
    header = headers[archs.index(arch)]
    needed: list[Needed] = []
    rpaths: list[str] = []
    min_os = None
    for command, body, data in header.commands:
        kind = command.cmd
        if kind in loads:
            needed.append(Needed(data.rstrip(b"\0").decode("utf-8", "replace"), loads[kind]))
        elif kind == mach_o.LC_RPATH:
            rpaths.append(data.rstrip(b"\0").decode("utf-8", "replace"))
        elif kind == mach_o.LC_BUILD_VERSION and int(body.platform) == 1:  # PLATFORM_MACOS
            min_os = _macos_version(int(body.minos))
        elif kind == mach_o.LC_VERSION_MIN_MACOSX:
            min_os = _macos_version(int(body.version))
    return NativeFile("macho", archs, tuple(needed), tuple(rpaths), min_os=min_os)


def _read_pe(path: Path, arch: str) -> NativeFile:
    import pefile

    directories = [
        pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"],
        pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT"],
    ]
    pe = pefile.PE(str(path), fast_load=True)
    try:
        machine = PE_MACHINES.get(pe.FILE_HEADER.Machine, hex(pe.FILE_HEADER.Machine))
        pe.parse_data_directories(directories=directories, import_dllnames_only=True)
        needed = [Needed(e.dll.decode("ascii", "replace")) for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])]
        needed += [
            Needed(e.dll.decode("ascii", "replace"), optional=True)
            for e in getattr(pe, "DIRECTORY_ENTRY_DELAY_IMPORT", [])
        ]
    finally:
        pe.close()
    return NativeFile("pe", (machine,), tuple(needed))
