"""Byte-compiling site-packages: the runtime's interpreter, tests left out, bytes independent of path and scheduling."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runenv.build.packages.assemble import install_wheels
from runenv.build.packages.bytecode import ByteCompiler
from runenv.errors import BuildError
from runenv.platforms import Platform, RuntimeLayout, get_platform
from tests.helpers.index import wheel_item
from tests.helpers.runtime_prefix import HOST_VERSION, host_prefix, host_runtime_platform, windows_prefix

WHEELS = ("tool-a", "helper-lib", "datascripts")


def pycs(prefix: Path) -> dict[str, bytes]:
    """Every .pyc under the prefix, by path relative to it."""
    return {p.relative_to(prefix).as_posix(): p.read_bytes() for p in sorted(prefix.rglob("*.pyc"))}


def byte_compile(prefix: Path, platform: Platform, python_version: str) -> bool:
    """All of site-packages compiled after the fact, as a build does when nothing was submitted earlier."""
    with ByteCompiler(RuntimeLayout(prefix, platform, python_version)) as compiler:
        return compiler.finish()


@contextmanager
def installing_tool_a(index, tmp_path: Path) -> Iterator[tuple[Path, Path, ByteCompiler]]:
    """tool-a installed into a fresh host prefix with the compiler beside it: (prefix, site-packages, compiler)."""
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    with ByteCompiler(RuntimeLayout(prefix, platform, HOST_VERSION)) as compiler:
        install_wheels(
            RuntimeLayout(prefix, platform, HOST_VERSION), [wheel_item(index, "tool-a")], on_installed=compiler.submit
        )
        yield prefix, prefix / platform.site_packages(HOST_VERSION), compiler


def test_byte_compile_with_the_runtime_interpreter(package_index, tmp_path):
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [wheel_item(package_index, "tool-a")])
    tests = prefix / platform.site_packages(HOST_VERSION) / "tool_a" / "tests"
    tests.mkdir()
    (tests / "test_tool.py").write_text("def test_it():\n    pass\n")
    assert byte_compile(prefix, platform, HOST_VERSION) is True
    assert list((prefix / platform.site_packages(HOST_VERSION) / "tool_a" / "__pycache__").glob("*.pyc"))
    assert not (tests / "__pycache__").exists()  # a package's tests are not compiled


def test_byte_compiled_files_do_not_depend_on_the_staging_path(package_index, tmp_path):
    platform = host_runtime_platform()
    found = []
    for staging in ("one", "two"):
        prefix = host_prefix(tmp_path / staging / "rt")
        install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [wheel_item(package_index, "tool-a")])
        byte_compile(prefix, platform, HOST_VERSION)
        found.append(pycs(prefix))
    assert found[0] and found[0] == found[1]
    assert all(str(tmp_path).encode() not in data for data in found[0].values())


@pytest.mark.parametrize("batch_files", [1, 100])
def test_compiling_beside_the_installer_gives_the_same_bytes_as_afterwards(package_index, tmp_path, batch_files):
    """Batches per wheel while installing, any number of workers, or all at the end: the same .pyc."""
    platform = host_runtime_platform()
    items = [wheel_item(package_index, name) for name in WHEELS]
    after = host_prefix(tmp_path / "after" / "rt")
    install_wheels(RuntimeLayout(after, platform, HOST_VERSION), items)
    with ByteCompiler(RuntimeLayout(after, platform, HOST_VERSION), batch_files=batch_files) as compiler:
        compiler.finish()
    for workers in (1, 3):
        beside = host_prefix(tmp_path / f"beside-{workers}" / "rt")
        with ByteCompiler(
            RuntimeLayout(beside, platform, HOST_VERSION), workers=workers, batch_files=batch_files
        ) as compiler:
            install_wheels(RuntimeLayout(beside, platform, HOST_VERSION), items, on_installed=compiler.submit)
            assert compiler.finish() is True
        assert pycs(beside) == pycs(after) and pycs(after)


def test_files_added_after_the_wheels_are_compiled_too(package_index, tmp_path):
    with installing_tool_a(package_index, tmp_path) as (_prefix, site, compiler):
        (site / "sitecustomize.py").write_text("X = 1\n")  # like copyFiles or the distutils shim
        compiler.finish()
    assert list((site / "__pycache__").glob("sitecustomize.*.pyc"))


def test_a_file_that_does_not_compile_fails_naming_it_and_the_rest_is_compiled(package_index, tmp_path):
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [wheel_item(package_index, "tool-a")])
    site = prefix / platform.site_packages(HOST_VERSION)
    (site / "broken_mod.py").write_text("def broken(:\n")
    with pytest.raises(BuildError, match=r"byte-compiling .* failed: .*broken_mod\.py"):
        byte_compile(prefix, platform, HOST_VERSION)
    assert list((site / "tool_a" / "__pycache__").glob("*.pyc"))


def test_no_byte_compile_for_a_foreign_minor_version(tmp_path):
    prefix = windows_prefix(tmp_path / "win", "3.9.1")
    assert byte_compile(prefix, get_platform("windows-x64"), "3.9.1") is False


def test_a_source_written_over_after_install_is_compiled_from_its_new_text(package_index, tmp_path):
    """copyFiles may replace an installed module: its .pyc must match the final source, not the wheel's."""
    with installing_tool_a(package_index, tmp_path) as (prefix, site, compiler):
        compiler.wait()
        patched = site / "tool_a" / "__init__.py"
        patched.write_text("PATCHED = 'by copyFiles'\n")
        compiler.finish(rewritten=[patched])
    check = subprocess.run(
        [
            str(prefix / host_runtime_platform().python_exe(HOST_VERSION)),
            "-I",
            "-c",
            "import importlib.util, sys, tool_a; "
            "data = open(importlib.util.cache_from_source(tool_a.__file__), 'rb').read(); "
            "src = open(tool_a.__file__, 'rb').read(); "
            "sys.exit(data[8:16] != importlib.util.source_hash(src))",
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr  # the pyc's hash is that of the patched source
