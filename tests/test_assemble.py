"""Installing wheels into runtime prefixes: RECORD, INSTALLER, .data, relocatable scripts, copyFiles."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess

import pytest

from runenv.build.packages.assemble import WheelToInstall, copy_files, install_wheels
from runenv.build.packages.lock import LockedPackage
from runenv.config.models import CopyFile
from runenv.errors import BuildError, IntegrityError
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers.bombs import zip_bomb
from tests.helpers.index import wheel_item
from tests.helpers.runtime_prefix import HOST_VERSION, host_prefix, host_runtime_platform, windows_prefix


def test_install_writes_record_installer_data_and_relocatable_scripts(package_index, tmp_path):
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    items = [wheel_item(package_index, n) for n in ("tool-a", "helper-lib", "datascripts")]
    installed = install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), items)
    assert [(p.name, p.how, p.index) for p in installed] == [
        ("tool-a", "wheel", package_index.simple),
        ("helper-lib", "wheel", package_index.simple),
        ("datascripts", "wheel", package_index.simple),
    ]
    site = prefix / platform.site_packages(HOST_VERSION)
    info = site / "tool_a-1.0.dist-info"
    assert (info / "INSTALLER").read_text() == "runenv\n"
    rows = {row[0]: row for row in csv.reader((info / "RECORD").open())}
    script_row = rows["../../../bin/tool-a"]
    assert (
        script_row[1]
        == "sha256="
        + __import__("base64")
        .urlsafe_b64encode(hashlib.sha256((prefix / "bin" / "tool-a").read_bytes()).digest())
        .rstrip(b"=")
        .decode()
    )
    assert (prefix / "share" / "datascripts" / "readme.txt").read_text() == "data file\n"
    assert list(prefix.glob("include/python3.*/datascripts.h"))
    assert str(tmp_path) not in (prefix / "bin" / "tool-a").read_text()
    assert (prefix / "bin" / "tool-a").read_text().startswith("#!/bin/sh\n")

    moved = shutil.move(str(prefix), str(tmp_path / "elsewhere" / "moved"))
    for script, expected in (("tool-a", "tool-a runs from"), ("ds-script", "ds-script")):
        out = subprocess.run([f"{moved}/bin/{script}"], capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"{expected} {moved}"


def test_script_reached_through_a_symlink_still_finds_its_interpreter(package_index, tmp_path):
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [wheel_item(package_index, "tool-a")])
    link = tmp_path / "tool-link"
    link.symlink_to(prefix / "bin" / "tool-a")
    out = subprocess.run([str(link)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"tool-a runs from {prefix}"


def test_windows_layout_gets_launchers_that_find_python_exe_beside_them(package_index, tmp_path):
    platform = get_platform("windows-x64")
    prefix = windows_prefix(tmp_path / "win")
    install_wheels(RuntimeLayout(prefix, platform, "3.12.10"), [wheel_item(package_index, "tool-a")])
    console = (prefix / "Scripts" / "tool-a.exe").read_bytes()
    gui = (prefix / "Scripts" / "tool-a-gui.exe").read_bytes()
    assert console.startswith(b"MZ") and gui.startswith(b"MZ")
    assert b"#!<launcher_dir>\\..\\python.exe\n" in console
    assert b"#!<launcher_dir>\\..\\pythonw.exe\n" in gui
    assert (prefix / "Lib" / "site-packages" / "tool_a" / "__init__.py").is_file()


def test_wheelhouse_copies_each_wheel_into_packages(package_index, tmp_path):
    prefix = host_prefix(tmp_path / "rt")
    install_wheels(
        RuntimeLayout(prefix, host_runtime_platform(), HOST_VERSION),
        [wheel_item(package_index, "helper-lib")],
        wheelhouse=True,
    )
    shipped = prefix / "packages" / package_index.files["helper-lib"].name
    assert shipped.read_bytes() == package_index.files["helper-lib"].read_bytes()


def test_copy_files_expands_site_packages_and_rejects_missing_source(tmp_path):
    ws = tmp_path / "ws"
    (ws / "assets").mkdir(parents=True)
    (ws / "assets" / "x.py").write_text("X = 1\n")
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    copy_files(
        ws,
        RuntimeLayout(prefix, platform, HOST_VERSION),
        [CopyFile(**{"from": "assets/x.py", "to": "{site-packages}/x.py"})],
    )
    assert (prefix / platform.site_packages(HOST_VERSION) / "x.py").read_text() == "X = 1\n"
    with pytest.raises(BuildError, match="assets/missing.txt"):
        copy_files(
            ws,
            RuntimeLayout(prefix, platform, HOST_VERSION),
            [CopyFile(**{"from": "assets/missing.txt", "to": "etc/m"})],
        )


def bomb_wheel(tmp_path, declared=None):
    """A real wheel whose one data file unpacks to 512 MiB of zeros (half a megabyte on disk)."""
    info = "bomb-1.0.dist-info"
    small = {
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": f"{info}/METADATA,,\n{info}/WHEEL,,\nbomb/huge.bin,,\n{info}/RECORD,,\n".encode(),
    }
    path = zip_bomb(tmp_path / "bomb-1.0-py3-none-any.whl", small, "bomb/huge.bin", declared=declared)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return WheelToInstall(path, path.name, LockedPackage("bomb", "1.0", f"file://{path}", sha, "wheel", ""))


def test_a_wheel_declaring_far_more_than_it_holds_is_refused_before_installing(tmp_path):
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    wheel = bomb_wheel(tmp_path)
    assert wheel.path.stat().st_size < 1_000_000
    with pytest.raises(IntegrityError, match=r"bomb-1\.0-py3-none-any\.whl: refusing member 'bomb/huge\.bin'"):
        install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [wheel])
    assert not (prefix / platform.site_packages(HOST_VERSION) / "bomb").exists()


def test_a_wheel_whose_data_outgrows_its_declared_size_writes_no_more_than_declared(tmp_path):
    """The central directory says 4 KiB, the deflate stream holds 512 MiB: reading stops at 4 KiB and fails."""
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    with pytest.raises(BuildError, match=r"cannot install bomb-1\.0-py3-none-any\.whl .*CRC") as failed:
        install_wheels(RuntimeLayout(prefix, platform, HOST_VERSION), [bomb_wheel(tmp_path, declared=4096)])
    assert "\n" not in str(failed.value)
    written = prefix / platform.site_packages(HOST_VERSION) / "bomb" / "huge.bin"
    assert not written.exists() or written.stat().st_size <= 4096
