"""Real native files for the verify tests: C extension modules and shared libraries built with the host gcc,
real PE files (the launchers PyPA `installer` ships, one with an import renamed), and minimal Mach-O files
written from the format's headers (no Mach-O toolchain runs on Linux; only the load commands verify reads).

- `build_extension(dest, module, needs=…, rpath=…, calls=…)`: `<module>.cpython-XY-…so` exporting PyInit_<name>.
- `build_library(dest, soname, needs=…, calls=…)`: a plain shared library.
- `ext_sdist(out, name, calls=…, link=…)`: a setuptools sdist whose C extension may link a shared library.
- `pe_file(kind, imports={old: new})`: bytes of a real PE launcher (`t64`: AMD64, `t64-arm`: ARM64).
- `macho(arch, min_os, dylibs, rpaths)`, `fat(*slices)`: Mach-O bytes.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path

import installer

from tests.helpers.index import write_sdist

EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
_INCLUDE = sysconfig.get_path("include")


def _gcc(source: str, out: Path, *flags: str) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc is needed to build the native test files")
    out.parent.mkdir(parents=True, exist_ok=True)
    c_file = out.with_name(out.name + ".c")
    c_file.write_text(source)
    subprocess.run([gcc, "-shared", "-fPIC", "-O0", "-o", str(out), str(c_file), *flags], check=True)
    c_file.unlink()
    return out


def _link_flags(needs: tuple[Path, ...], rpath: str | None) -> list[str]:
    flags = ["-Wl,--no-as-needed", *(f"-L{p.parent}" for p in needs), *(f"-l:{p.name}" for p in needs)]
    return [*flags, f"-Wl,-rpath,{rpath}"] if rpath else flags


def build_library(
    dest: Path, soname: str, needs: tuple[Path, ...] = (), rpath: str | None = None, calls: str = ""
) -> Path:
    """`dest/soname`, a shared library whose `helper()` runs `calls` (C statements)."""
    source = f"#include <pthread.h>\n#include <dlfcn.h>\nint helper(void) {{ {calls} return 42; }}\n"
    return _gcc(source, dest / soname, f"-Wl,-soname,{soname}", *_link_flags(needs, rpath))


def build_extension(
    dest: Path, module: str, needs: tuple[Path, ...] = (), rpath: str | None = None, calls: str = ""
) -> Path:
    """A C extension module `module` (last dotted part) in `dest`, linked against `needs` with `rpath`."""
    name = module.rsplit(".", 1)[-1]
    source = (
        "#include <Python.h>\n#include <pthread.h>\n#include <dlfcn.h>\n"
        f'static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{name}", NULL, -1, NULL}};\n'
        f"PyMODINIT_FUNC PyInit_{name}(void) {{ {calls} return PyModule_Create(&def); }}\n"
    )
    return _gcc(source, dest / f"{name}{EXT_SUFFIX}", f"-I{_INCLUDE}", *_link_flags(needs, rpath))


# A call that needs a glibc newer than manylinux_2_28 (pthread_create moved into libc at 2.34).
NEW_GLIBC_CALL = "static volatile int never; pthread_t t; if (never) pthread_create(&t, 0, 0, 0);"


def pe_file(kind: str = "t64", imports: dict[bytes, bytes] | None = None) -> bytes:
    """A real PE launcher from `installer` (t64: AMD64, t64-arm: ARM64), import names replaced (same length)."""
    data = (Path(installer.__file__).parent / "_scripts" / f"{kind}.exe").read_bytes()
    for old, new in (imports or {}).items():
        assert len(old) == len(new) and old in data, old
        data = data.replace(old, new)
    return data


_CPU = {"x86_64": 0x01000007, "arm64": 0x0100000C}
_LC_LOAD_DYLIB, _LC_RPATH, _LC_BUILD_VERSION = 0xC, 0x8000001C, 0x32


def _string_command(cmd: int, text: str, header: bytes = b"") -> bytes:
    body = text.encode() + b"\0"
    size = (8 + len(header) + len(body) + 7) // 8 * 8
    return struct.pack("<II", cmd, size) + header + body.ljust(size - 8 - len(header), b"\0")


def macho(arch: str, min_os: str = "11.0", dylibs: tuple[str, ...] = (), rpaths: tuple[str, ...] = ()) -> bytes:
    """A 64-bit Mach-O dylib: LC_BUILD_VERSION (macOS, `min_os`), one LC_LOAD_DYLIB per dylib, LC_RPATHs."""
    major, minor = (int(p) for p in min_os.split(".")[:2])
    commands = [struct.pack("<IIIIII", _LC_BUILD_VERSION, 24, 1, major << 16 | minor << 8, major << 16, 0)]
    commands += [_string_command(_LC_LOAD_DYLIB, d, struct.pack("<IIII", 24, 2, 0x10000, 0x10000)) for d in dylibs]
    commands += [_string_command(_LC_RPATH, r, struct.pack("<I", 12)) for r in rpaths]
    body = b"".join(commands)
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, _CPU[arch], 0, 6, len(commands), len(body), 0, 0)  # MH_DYLIB
    return (header + body).ljust(4096, b"\0")


def fat(*slices: tuple[str, bytes]) -> bytes:
    """A universal file holding each (arch, Mach-O bytes) slice, 4 KiB aligned."""
    offset = 4096
    table, payload = b"", b""
    for arch, data in slices:
        table += struct.pack(">iiIII", _CPU[arch], 0, offset + len(payload), len(data), 12)
        payload += data.ljust((len(data) + 4095) // 4096 * 4096, b"\0")
    return (struct.pack(">II", 0xCAFEBABE, len(slices)) + table).ljust(offset, b"\0") + payload


def ext_sdist(out: Path, name: str, calls: str = "", link: Path | None = None) -> Path:
    """`<name>-1.0.tar.gz`: a setuptools sdist (static metadata) whose extension `<name>._ext` has `answer()`,
    which runs `calls` (C statements) and returns 42, or `helper()` of the shared library `link` (linked by its
    absolute directory, as a package built against a host library is)."""
    libs = ""
    if link is not None:
        libs = f", libraries=[':{link.name}'], library_dirs=['{link.parent}'], runtime_library_dirs=['{link.parent}']"
    answer = "helper()" if link else "42"
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "1.0"\n'
        ),
        "PKG-INFO": f"Metadata-Version: 2.2\nName: {name}\nVersion: 1.0\n",
        "setup.py": (
            "from setuptools import Extension, setup\n"
            f"setup(packages=['{name}'], ext_modules=[Extension('{name}._ext', ['ext.c']{libs})])\n"
        ),
        f"{name}/__init__.py": "",
        "ext.c": (
            "#include <Python.h>\n#include <pthread.h>\nint helper(void);\n"
            f"static PyObject *answer(PyObject *m, PyObject *a) {{ {calls} return PyLong_FromLong({answer}); }}\n"
            'static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL}};\n'
            'static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_ext", NULL, -1, methods};\n'
            "PyMODINIT_FUNC PyInit__ext(void) { return PyModule_Create(&def); }\n"
        ),
    }
    return write_sdist(out / f"{name}-1.0.tar.gz", f"{name}-1.0", files)
