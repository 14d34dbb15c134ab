"""`runenv build` with packages, end to end: loopback PBS mirror + loopback index, host and windows-x64.

Every action and fallback path, relocation of the unpacked tarball, the foreign-platform layout,
wheelhouse, copyFiles and a wrong hash in the index. Locks, downloads and verification through
`build` are in tests/test_build_lock_verify.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runenv.cache import sha256_file
from tests.helpers import HOST
from tests.helpers.built import cached_blobs, dist_files, leftovers, read_manifest, tar_names, unpack
from tests.helpers.pbs import MINOR, VERSION

STEM = f"python-{VERSION}-{HOST}"
WIN_STEM = f"python-{VERSION}-windows-x64"
SITE = f"lib/python{MINOR}/site-packages"
CLEAN_ENV = {"PATH": "/usr/bin:/bin"}


def runtime(packages: dict, **sections: dict) -> dict:
    """A runtime config.json with `packages` and other sections."""
    return {"packages": packages, **sections}


def run(exe: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a file of an unpacked runtime with nothing of the host's Python environment around."""
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=CLEAN_ENV)


def packages_by_name(manifest: dict) -> dict[str, dict]:
    return {p["name"]: p for p in manifest["packages"]}


def skipped_by_name(manifest: dict) -> dict[str, tuple[str, str]]:
    return {s["name"]: (s["platform"], s["reason"]) for s in manifest["skipped"]}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_wheels_run_from_the_unpacked_tarball_anywhere(index, build_workspace, run_cli, tmp_path) -> None:
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["tool-a", "datascripts"]})})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert leftovers(ws) == []
    manifest = read_manifest(ws, STEM)
    assert {n: (p["version"], p["how"], p["requested"]) for n, p in packages_by_name(manifest).items()} == {
        "tool-a": ("1.0", "wheel", True),
        "helper-lib": ("1.2", "wheel", False),
        "datascripts": ("0.5", "wheel", True),
    }
    assert packages_by_name(manifest)["tool-a"]["index"] == index.simple
    assert manifest["skipped"] == []

    prefix = unpack(ws, STEM, tmp_path / "unpacked" / "elsewhere")
    imported = run(prefix / "bin" / "python3", "-c", "import tool_a, helper_lib, datascripts; print(helper_lib.VALUE)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "42"
    script = run(prefix / "bin" / "tool-a")
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == f"tool-a runs from {prefix}"
    data_script = run(prefix / "bin" / "ds-script")
    assert data_script.returncode == 0, data_script.stderr
    assert data_script.stdout.strip() == f"ds-script {prefix}"
    assert (prefix / "share" / "datascripts" / "readme.txt").read_text() == "data file\n"
    assert (prefix / SITE / "tool_a-1.0.dist-info" / "INSTALLER").read_text() == "runenv\n"
    assert (prefix / SITE / "tool_a" / "__pycache__").is_dir()  # byte-compiled by the runtime's interpreter
    # The fixture interpreter ships no stdlib .pyc; compiling site-packages must not add any.
    assert [n for n in tar_names(ws / "dist" / f"{STEM}.tar.gz") if "__pycache__" in n and f"/{SITE}/" not in n] == []
    assert not (prefix / SITE / "sitecustomize.py").exists()  # no distutils shim below Python 3.12
    assert not (prefix / "packages").exists()


def test_skip_rule_leaves_packages_out_and_records_the_reason(index, build_workspace, run_cli) -> None:
    skip = {"helper-lib": {HOST: "the runtime ships its own"}, "excluded-dep": {HOST: "not wanted here"}}
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["helper-lib", "needs-excluded"], "skip": skip})})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    names = tar_names(ws / "dist" / f"{STEM}.tar.gz")
    assert f"{STEM}/{SITE}/needs_excluded.py" in names
    assert f"{STEM}/{SITE}/helper_lib.py" not in names
    assert f"{STEM}/{SITE}/excluded_dep.py" in names  # skip acts on direct dependencies; needs-excluded needs it
    manifest = read_manifest(ws, STEM)
    assert set(packages_by_name(manifest)) == {"needs-excluded", "excluded-dep"}
    assert skipped_by_name(manifest)["helper-lib"] == (HOST, "the runtime ships its own")
    assert [k["name"] for k in manifest["kept-as-dependency"]] == ["excluded-dep"]


@pytest.mark.parametrize(
    "packages",
    [
        {"dependencies": ["sdistonly"], "forceSource": {"sdistonly": {HOST: "patched build"}}},
        {"dependencies": ["sdistonly"], "resolution": {"allowSourceList": ["sdistonly"]}},
    ],
    ids=["forceSource", "fallback-source"],
)
def test_sdist_is_built_with_the_runtime_interpreter(index, build_workspace, run_cli, tmp_path, packages) -> None:
    index.require("setuptools")
    ws = build_workspace(runtimes={VERSION: runtime(packages)})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    entry = packages_by_name(read_manifest(ws, STEM))["sdistonly"]
    assert entry["how"] == "built-from-sdist" and entry["version"] == "2.0"
    prefix = unpack(ws, STEM, tmp_path / "moved")
    script = run(prefix / "bin" / "sdistonly")
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == f"sdistonly {prefix}"
    site = prefix / SITE
    assert not list(site.glob("setuptools*")), "build requirements must not stay in the runtime"


def test_fallback_skip_warns_and_records_the_package(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["tool-a", "winonly"]})})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert "winonly" in result.stderr and "skipped" in result.stderr
    manifest = read_manifest(ws, STEM)
    assert skipped_by_name(manifest) == {"winonly": (HOST, f"no wheel for {HOST}")}
    assert "winonly" not in packages_by_name(manifest)
    assert f"{STEM}/{SITE}/winonly.py" not in tar_names(ws / "dist" / f"{STEM}.tar.gz")


def test_fallback_error_fails_naming_package_and_platform(index, build_workspace, run_cli) -> None:
    packages = {"dependencies": ["tool-a", "winonly"], "resolution": {"strictMissing": True}}
    ws = build_workspace(runtimes={VERSION: runtime(packages)})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    [line] = error_lines(result.stderr)
    assert "winonly" in line and HOST in line
    assert "Traceback" not in result.stderr
    assert dist_files(ws) == [] and leftovers(ws) == []


def test_windows_build_has_launchers_and_windows_layout(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["tool-a", "winonly"]})})
    result = run_cli("-w", ws, "-o", "json", "build", VERSION, "--platform", "windows-x64")
    assert result.code == 0, result.stderr
    [artifact] = result.json()
    verify = artifact["verify"]  # static checks and the closure only: this host cannot run a Windows runtime
    assert verify["ok"] and verify["static"]["ran"] and verify["closure"]["ran"] and not verify["imports"]["ran"]
    assert "cannot run windows-x64" in verify["imports"]["note"] and not verify["relocated"]
    names = tar_names(ws / "dist" / f"{WIN_STEM}.tar.gz")
    for member in (
        "Scripts/tool-a.exe",
        "Scripts/tool-a-gui.exe",
        "Lib/site-packages/tool_a/__init__.py",
        "Lib/site-packages/winonly.py",
        "Lib/site-packages/helper_lib.py",
    ):
        assert f"{WIN_STEM}/{member}" in names, member
    assert not any(n.startswith(f"{WIN_STEM}/lib/") or n.startswith(f"{WIN_STEM}/bin/") for n in names)
    assert set(packages_by_name(read_manifest(ws, WIN_STEM))) == {"tool-a", "helper-lib", "winonly"}


def test_windows_sdist_fails_unless_sdists_are_shipped(index, build_workspace, run_cli) -> None:
    packages = {"dependencies": ["sdistonly"], "resolution": {"allowSourceList": ["sdistonly"]}}
    ws = build_workspace(runtimes={VERSION: runtime(packages)})
    failed = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert failed.code == 1
    [line] = error_lines(failed.stderr)
    assert "sdistonly" in line and "windows-x64" in line
    assert "shipSdists" in failed.stderr  # the hint
    assert dist_files(ws) == [] and leftovers(ws) == []

    ws = build_workspace(runtimes={VERSION: runtime(packages, build={"shipSdists": True})})
    shipped = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert shipped.code == 0, shipped.stderr
    assert f"{WIN_STEM}/packages/sdistonly-2.0.tar.gz" in tar_names(ws / "dist" / f"{WIN_STEM}.tar.gz")
    assert packages_by_name(read_manifest(ws, WIN_STEM))["sdistonly"]["how"] == "shipped-sdist"


def test_wheelhouse_puts_every_wheel_in_packages(index, build_workspace, run_cli, tmp_path) -> None:
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["tool-a"]}, build={"wheelhouse": True})})
    assert run_cli("-w", ws, "build", VERSION).code == 0
    prefix = unpack(ws, STEM, tmp_path / "moved")
    wheels = sorted(p.name for p in (prefix / "packages").iterdir())
    assert wheels == ["helper_lib-1.2-py3-none-any.whl", "tool_a-1.0-py3-none-any.whl"]
    assert (prefix / "packages" / wheels[1]).read_bytes() == index.files["tool-a"].read_bytes()


def test_copy_files_and_package_root_as_in_the_seed(index, build_workspace, run_cli, tmp_path) -> None:
    """Sources are relative to the declaring file's directory; `{packageRoot}` is the runtime's directory."""
    rt_dir = f"python-{VERSION}"
    shared_copy = [{"from": "assets/extra_mod.py", "to": "{site-packages}/extra_mod.py"}]
    own_copy = [{"from": "etc", "to": "etc/runenv"}]
    linux_only = {HOST: {"copyFiles": [{"from": "linux-x64/bin/", "to": "share/bin"}]}}
    settings = {"sdistonly": {HOST: {"configSettings": ["root={packageRoot}/win-compat", "src={sdistRoot}"]}}}
    packages = {"dependencies": ["sdistonly"], "copyFiles": own_copy, "platformSpecific": linux_only}
    ws = build_workspace(runtimes={VERSION: runtime({**packages, "buildWheel": settings})})
    shared = json.loads((ws / "shared-config.json").read_text())
    (ws / "shared-config.json").write_text(json.dumps({**shared, "packages": {"copyFiles": shared_copy}}))
    for rel, text in {
        "assets/extra_mod.py": "WHERE = __file__\n",
        f"{rt_dir}/etc/site.toml": "x = 1\n",
        f"{rt_dir}/linux-x64/bin/tool.sh": "echo linux\n",
    }.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    assert run_cli("-w", ws, "config", "validate").code == 0
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    prefix = unpack(ws, STEM, tmp_path / "moved")
    where = run(prefix / "bin" / "python3", "-c", "import extra_mod; print(extra_mod.WHERE)")
    assert where.stdout.strip() == str(prefix / SITE / "extra_mod.py"), where.stderr
    assert (prefix / "etc" / "runenv" / "site.toml").read_text() == "x = 1\n"
    assert (prefix / "share" / "bin" / "tool.sh").read_text() == "echo linux\n"
    got = run(
        prefix / "bin" / "python3", "-c", "import sdistonly_settings as s; print(s.SETTINGS['root'], s.SETTINGS['src'])"
    )
    package_root, sdist_root = got.stdout.split()
    assert package_root == str(ws / rt_dir / "win-compat"), got.stderr
    assert Path(sdist_root).name == "sdistonly-2.0"


def test_copy_files_missing_source_is_a_config_error_naming_file_and_path(index, build_workspace, run_cli) -> None:
    copy = [{"from": "assets/not-there.py", "to": "{site-packages}/x.py"}]
    ws = build_workspace(runtimes={VERSION: runtime({"copyFiles": copy})})
    (ws / "assets").mkdir()
    (ws / "assets" / "not-there.py").write_text("at the workspace root, not in the runtime's directory\n")
    for args in (("config", "validate"), ("build", VERSION)):
        result = run_cli("-w", ws, *args)
        assert result.code == 2
        [line] = error_lines(result.stderr)
        assert f"python-{VERSION}/config.json: packages.copyFiles[0].from: 'assets/not-there.py' does not exist" in line
    assert dist_files(ws) == [] and leftovers(ws) == [] and not list(ws.glob(f"python-{VERSION}/pylock.*"))


def test_wrong_hash_in_index_installs_and_caches_nothing(index, build_workspace, run_cli, sandbox) -> None:
    ws = build_workspace(runtimes={VERSION: runtime({"dependencies": ["badhash"]})})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    [line] = error_lines(result.stderr)
    assert "sha256" in line and "badhash" in line
    assert dist_files(ws) == [] and leftovers(ws) == []
    real = sha256_file(index.files["badhash"])
    assert real not in cached_blobs(sandbox) and "0" * 64 not in cached_blobs(sandbox)
    tmp = sandbox / "runenv-cache" / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


@pytest.mark.parametrize("filesystems", ["default_scratch", "tmpdir_in_ram"])
def test_sdist_builds_when_scratch_and_temp_dir_are_different_file_systems(
    index, build_workspace, run_cli, tmp_path, request, filesystems
) -> None:
    """The default RAM scratch (`/dev/shm`) with the temp dir on disk, and the temp dir in RAM with scratch on disk."""
    request.getfixturevalue(filesystems)
    index.require("setuptools")
    packages = {"dependencies": ["sdistonly", "tool-a"], "forceSource": {"sdistonly": {HOST: "patched build"}}}
    ws = build_workspace(runtimes={VERSION: runtime(packages, build={"wheelhouse": True})})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert packages_by_name(read_manifest(ws, STEM))["sdistonly"]["how"] == "built-from-sdist"
    prefix = unpack(ws, STEM, tmp_path / "moved")
    assert run(prefix / "bin" / "sdistonly").stdout.strip() == f"sdistonly {prefix}"
    assert [p.name for p in (prefix / "packages").glob("sdistonly-*")] == ["sdistonly-2.0-py3-none-any.whl"]
    assert leftovers(ws) == []
