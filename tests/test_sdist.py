"""Building wheels from sdists on the native host; foreign targets fail or ship the sdist."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from runenv.build.packages.assemble import WheelToInstall, install_wheels
from runenv.build.packages.lock import LockedPackage
from runenv.build.packages.resolve import index_args
from runenv.build.packages.sdist import SourceBuild, handle_sdist, unpack_sdist
from runenv.config.models import BuildWheelSpec
from runenv.errors import BuildError, IntegrityError
from runenv.platforms import RuntimeLayout, get_platform
from tests.helpers.bombs import tar_gz_bomb, zip_bomb
from tests.helpers.index import TestIndex
from tests.helpers.runtime_prefix import HOST_VERSION, host_prefix, host_runtime_platform, windows_prefix


def sdist_package(index: TestIndex) -> tuple[Path, LockedPackage]:
    path = index.files["sdistonly"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, LockedPackage("sdistonly", "2.0", f"{index.url}/files/{path.name}", sha, "sdist", index.simple)


def windows_build(prefix):
    return SourceBuild(RuntimeLayout(prefix, get_platform("windows-x64"), "3.12.10"))


def test_sdist_builds_on_host_with_isolated_build_requires(index, tmp_path):
    index.require("setuptools", "wheel")
    sdist, pkg = sdist_package(index)
    platform = host_runtime_platform()
    prefix = host_prefix(tmp_path / "rt")
    spec = BuildWheelSpec(buildRequires=["setuptools", "wheel"])
    build = SourceBuild(RuntimeLayout(prefix, platform, HOST_VERSION), index=index_args([index.simple], False))
    outcome = handle_sdist(sdist, pkg, build, tmp_path / "built", spec=spec)
    assert outcome.wheel is not None and outcome.wheel.name.startswith("sdistonly-2.0-")
    site = prefix / platform.site_packages(HOST_VERSION)
    assert not list(site.glob("setuptools*")) and not list(site.glob("wheel*"))
    install_wheels(
        RuntimeLayout(prefix, platform, HOST_VERSION),
        [WheelToInstall(outcome.wheel, outcome.wheel.name, pkg, "built-from-sdist")],
    )
    out = subprocess.run([str(prefix / "bin" / "sdistonly")], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "sdistonly"


def test_config_settings_reach_the_backend_with_package_and_sdist_root(index, tmp_path):
    index.require("setuptools", "wheel")
    sdist, pkg = sdist_package(index)
    spec = BuildWheelSpec(configSettings=["mode=fast", "root={packageRoot}/win-compat", "src={sdistRoot}/sub"])
    runtime_dir = tmp_path / "ws" / "python-3.12.10-atls"
    build = SourceBuild(
        RuntimeLayout(host_prefix(tmp_path / "rt"), host_runtime_platform(), HOST_VERSION),
        index=index_args([index.simple], False),
        package_root=runtime_dir,
    )
    outcome = handle_sdist(sdist, pkg, build, tmp_path / "built", spec=spec)
    with zipfile.ZipFile(outcome.wheel) as zf:
        settings = zf.read("sdistonly_settings.py").decode()
    received = eval(settings.split("=", 1)[1])  # the backend wrote repr(config_settings)
    assert received["mode"] == "fast"
    assert received["root"] == f"{runtime_dir}/win-compat"
    assert received["src"].endswith("/sdistonly-2.0/sub") and "{sdistRoot}" not in received["src"]


def test_foreign_platform_sdist_is_an_error_naming_package_and_platform(index, tmp_path):
    sdist, pkg = sdist_package(index)
    prefix = windows_prefix(tmp_path / "win")
    with pytest.raises(BuildError, match="sdistonly 2.0 .*windows-x64"):
        handle_sdist(sdist, pkg, windows_build(prefix), tmp_path / "built")


def test_foreign_platform_ships_the_sdist_when_configured(index, tmp_path):
    sdist, pkg = sdist_package(index)
    prefix = windows_prefix(tmp_path / "win")
    outcome = handle_sdist(sdist, pkg, windows_build(prefix), tmp_path / "built", ship_sdists=True)
    assert outcome.shipped == prefix / "packages" / "sdistonly-2.0.tar.gz"
    assert outcome.shipped.read_bytes() == sdist.read_bytes()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_sdist_bomb_is_refused_before_its_member_is_written(tmp_path, kind):
    name = f"bomb-1.0.{kind}"
    if kind == "zip":
        sdist = zip_bomb(tmp_path / name, {"bomb-1.0/PKG-INFO": b"Name: bomb\n"}, "bomb-1.0/huge.dat")
    else:
        sdist = tar_gz_bomb(tmp_path / name, member="bomb-1.0/huge.dat", top="bomb-1.0")
    into = tmp_path / "src"
    with pytest.raises(IntegrityError, match=rf"{name}: refusing member 'bomb-1\.0/huge\.dat'"):
        unpack_sdist(sdist, name, into)
    assert not (into / "bomb-1.0" / "huge.dat").exists()
