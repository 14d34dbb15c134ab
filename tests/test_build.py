"""`runenv build` end to end against a PBS mirror on loopback, from the interpreter running the tests."""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from runenv.cache import sha256_file
from runenv.compat import tomllib
from runenv.platforms import PLATFORM_KEYS
from tests.conftest import run_runenv
from tests.helpers import HOST
from tests.helpers.bombs import tar_gz_bomb
from tests.helpers.built import cached_blobs, dist_files, grep_tree, leftovers, read_manifest, tar_member, tar_names
from tests.helpers.http import StaticServer
from tests.helpers.pbs import RELEASE, VERSION, PbsMirror, tar_gz_of

SECRET = "SECRETz8Q4"  # in every credential a test uses; found nowhere runenv writes
STEM = f"python-{VERSION}-{HOST}"


def test_build_host_runtime_is_relocatable(build_workspace, run_cli, tmp_path: Path) -> None:
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert dist_files(ws) == [f"{STEM}.manifest.toml", f"{STEM}.tar.gz", f"{STEM}.tar.gz.sha256"]
    tarball = ws / "dist" / f"{STEM}.tar.gz"
    assert str(tarball) in result.stdout
    assert (ws / "dist" / f"{STEM}.tar.gz.sha256").read_text() == f"{sha256_file(tarball)}  {STEM}.tar.gz\n"
    assert leftovers(ws) == []

    moved = tmp_path / "somewhere" / "else"
    moved.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(tarball), "-C", str(moved)], check=True)
    python = moved / STEM / "bin" / "python3"
    proc = subprocess.run(
        [str(python), "-c", "import sys, ssl, sqlite3; print(sys.version.split()[0]); print(sys.prefix)"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [VERSION, str(moved / STEM)]
    assert (moved / STEM / "runenv-manifest.toml").read_text().startswith("format-version = 1")


def test_tarball_entries_are_normalised_with_release_date_mtime(build_workspace, run_cli) -> None:
    ws = build_workspace()
    assert run_cli("-w", ws, "build", VERSION).code == 0
    with tarfile.open(ws / "dist" / f"{STEM}.tar.gz") as tar:
        members = tar.getmembers()
    assert {m.name.split("/")[0] for m in members} == {STEM}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert {m.mtime for m in members} == {4070908800}  # 2099-01-01, the release date
    assert {m.mode for m in members if m.isreg()} <= {0o644, 0o755}


def test_rebuild_elsewhere_later_is_byte_identical_and_downloads_once(
    build_workspace, run_cli, pbs_mirror: PbsMirror, tmp_path: Path
) -> None:
    first = build_workspace(root=tmp_path / "a" / "ws")
    assert run_cli("-w", first, "build", VERSION).code == 0
    time.sleep(1.1)
    second = build_workspace(root=tmp_path / "elsewhere" / "second-ws")
    result = run_runenv("build", VERSION, cwd=second)  # another process, found from cwd
    assert result.code == 0, result.stderr
    one = (first / "dist" / f"{STEM}.tar.gz").read_bytes()
    two = (second / "dist" / f"{STEM}.tar.gz").read_bytes()
    assert one == two
    assert pbs_mirror.server.count(f"/{RELEASE}/cpython-*linux*") == 1


def test_source_date_epoch_sets_entry_times(build_workspace, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ws = build_workspace()
    assert run_cli("-w", ws, "build", VERSION).code == 0
    with tarfile.open(ws / "dist" / f"{STEM}.tar.gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_hash_mismatch_fails_and_writes_nothing(build_workspace, run_cli, pbs_mirror: PbsMirror, sandbox) -> None:
    name = pbs_mirror.name(HOST)
    real = pbs_mirror.set_sum(name, "0" * 64)
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert "sha256 mismatch" in result.stderr and name in result.stderr
    assert "Traceback" not in result.stderr
    assert dist_files(ws) == []
    assert real not in cached_blobs(sandbox) and "0" * 64 not in cached_blobs(sandbox)
    assert not list((sandbox / "runenv-cache" / "tmp").iterdir())
    assert leftovers(ws) == []


def test_config_pin_wins_over_sha256sums(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    name = pbs_mirror.name(HOST)
    real = pbs_mirror.sums.pop(name)
    pbs_mirror.write_sums()  # the release's SHA256SUMS no longer lists the archive
    ws = build_workspace(runtimes={VERSION: {"python": {"sha256": {HOST: real}}}})
    assert run_cli("-w", ws, "build", VERSION).code == 0

    wrong = build_workspace(root=ws.parent / "wrong", runtimes={VERSION: {"python": {"sha256": {HOST: "1" * 64}}}})
    result = run_cli("-w", wrong, "build", VERSION)
    assert result.code == 1 and "sha256 mismatch" in result.stderr


def test_no_hash_available_is_refused(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    pbs_mirror.sums.pop(pbs_mirror.name(HOST))
    pbs_mirror.write_sums()
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert "no sha256 for" in result.stderr and "refusing" in result.stderr
    assert f"python.sha256.{HOST}" in result.stderr
    assert pbs_mirror.server.count("*cpython-*") == 0
    assert dist_files(ws) == []


def test_wrong_version_inside_archive_is_refused(build_workspace, run_cli, pbs_mirror, pbs_archives) -> None:
    major, minor, patch = VERSION.split(".")
    other = f"{major}.{minor}.{int(patch) + 1}"
    pbs_mirror.add(pbs_archives.by_platform[HOST], pbs_mirror.name(HOST, version=other))
    ws = build_workspace(runtimes={other: {}})
    result = run_cli("-w", ws, "build", other)
    assert result.code == 1
    assert f"contains Python {VERSION}, but the runtime needs {other}" in result.stderr
    assert dist_files(ws) == []
    assert leftovers(ws) == []


def test_hostile_archive_is_refused(build_workspace, run_cli, pbs_mirror: PbsMirror, tmp_path: Path) -> None:
    evil_member = tarfile.TarInfo("python/../../../tmp/evil")
    evil = tar_gz_of(tmp_path / "evil.tar.gz", [(evil_member, b"boom")])
    pbs_mirror.add(evil, pbs_mirror.name(HOST))
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert "refusing member 'python/../../../tmp/evil'" in result.stderr
    assert pbs_mirror.name(HOST) in result.stderr
    assert dist_files(ws) == [] and leftovers(ws) == []


def test_interpreter_archive_bomb_fails_in_one_line_and_leaves_nothing(
    build_workspace, run_cli, pbs_mirror: PbsMirror, tmp_path: Path, default_scratch: Path
) -> None:
    """2 MB that unpacks to 2 GiB, staged in the default RAM scratch: refused before it fills RAM."""
    pbs_mirror.add(tar_gz_bomb(tmp_path / "bomb.tar.gz"), pbs_mirror.name(HOST))
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert result.error.startswith(f"error: {pbs_mirror.name(HOST)}: refusing member 'python/lib/huge.bin'")
    assert "Traceback" not in result.stderr
    assert dist_files(ws) == [] and leftovers(ws) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_mirror_names_url_and_variable(build_workspace, run_cli, monkeypatch) -> None:
    ws = build_workspace()
    dead = f"http://127.0.0.1:{free_port()}/pbs"
    monkeypatch.setenv("RUNENV_PBS_MIRROR", dead)
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert f"{dead}/{RELEASE}/SHA256SUMS" in result.stderr
    assert "RUNENV_PBS_MIRROR" in result.stderr
    assert len(result.error.strip().splitlines()) <= 2  # the error line and its hint
    assert dist_files(ws) == []


def test_a_mirror_without_the_file_names_it_and_the_keys_to_check(
    build_workspace, run_cli, pbs_mirror: PbsMirror, pbs_catalogue
) -> None:
    """RUNENV_PBS_MIRROR is set and answers 404: the hint names what it lacks, not "set RUNENV_PBS_MIRROR"."""
    ws = build_workspace()
    archive = pbs_mirror.name(HOST)
    (pbs_mirror.release_dir / archive).unlink()  # catalogued (so no SHA256SUMS is read), but not on the mirror
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    error, hint = result.error.strip().splitlines()
    assert f"{pbs_mirror.url}/{RELEASE}/{archive}: HTTP 404" in error and "(PBS mirror from RUNENV_PBS_MIRROR)" in error
    assert hint.startswith(f"  hint: the mirror has no {RELEASE}/{archive}; check python.release or RUNENV_PBS_MIRROR")
    assert "set RUNENV_PBS_MIRROR" not in result.stderr

    ws = build_workspace(shared={"python": {"release": "20990202"}})  # a release the mirror does not hold
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    assert "hint: the mirror has no 20990202/SHA256SUMS; check python.release or RUNENV_PBS_MIRROR" in result.stderr
    assert "set RUNENV_PBS_MIRROR" not in result.stderr
    assert dist_files(ws) == []


def test_offline_without_cache_says_what_is_missing(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION, "--offline")
    assert result.code == 1
    assert "offline" in result.stderr and "SHA256SUMS" in result.stderr
    assert pbs_mirror.server.requests == []
    assert dist_files(ws) == []


def test_offline_with_cache_builds_without_network(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    ws = build_workspace()
    assert run_cli("-w", ws, "build", VERSION).code == 0
    first = (ws / "dist" / f"{STEM}.tar.gz").read_bytes()
    (ws / "dist" / f"{STEM}.tar.gz").unlink()
    seen = len(pbs_mirror.server.requests)
    result = run_cli("-w", ws, "build", VERSION, "--offline")
    assert result.code == 0, result.stderr
    assert len(pbs_mirror.server.requests) == seen
    assert (ws / "dist" / f"{STEM}.tar.gz").read_bytes() == first


def test_offline_with_pin_but_archive_not_cached(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    sha = pbs_mirror.sums[pbs_mirror.name(HOST)]
    ws = build_workspace(runtimes={VERSION: {"python": {"sha256": {HOST: sha}}}})
    result = run_cli("-w", ws, "build", VERSION, "--offline")
    assert result.code == 1
    assert "offline and not in the cache" in result.stderr and pbs_mirror.name(HOST) in result.stderr


def test_cross_builds_have_the_target_layout(build_workspace, run_cli) -> None:
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64", "--platform", "macosx-aarch64")
    assert result.code == 0, result.stderr
    minor = ".".join(VERSION.split(".")[:2])
    win = tar_names(ws / "dist" / f"python-{VERSION}-windows-x64.tar.gz")
    top = f"python-{VERSION}-windows-x64"
    for member in ("python.exe", "Lib/os.py", "Lib/site-packages", "DLLs", "Scripts", "runenv-manifest.toml"):
        assert f"{top}/{member}" in win, member
    mac = tar_names(ws / "dist" / f"python-{VERSION}-macosx-aarch64.tar.gz")
    top = f"python-{VERSION}-macosx-aarch64"
    assert mac[f"{top}/bin/python3"].issym() and mac[f"{top}/bin/python3"].linkname == f"python{minor}"
    assert f"{top}/lib/python{minor}/os.py" in mac
    assert f"{top}/lib/libpython{minor}.dylib" in mac


def test_cross_build_with_wrong_layout_is_refused(build_workspace, run_cli, pbs_mirror, pbs_archives) -> None:
    pbs_mirror.add(pbs_archives.by_platform["macosx-aarch64"], pbs_mirror.name("windows-x64"))
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION, "--platform", "windows-x64")
    assert result.code == 1
    assert "has no python.exe for windows-x64" in result.stderr


def test_json_output_all_platforms_jobs_and_out(build_workspace, run_cli, tmp_path: Path) -> None:
    ws = build_workspace(shared={"python": {"release": RELEASE}, "build": {"platforms": ["windows-x64", HOST]}})
    out = tmp_path / "artifacts"
    result = run_cli("-w", ws, "build", "--all", "--all-platforms", "--jobs", "2", "--out", out, "-o", "json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert [(a["runtime"], a["platform"]) for a in data] == [(VERSION, "windows-x64"), (VERSION, HOST)]
    for artifact in data:
        path = Path(artifact["path"])
        assert path.parent == out and path.name == f"python-{VERSION}-{artifact['platform']}.tar.gz"
        assert artifact["sha256"] == sha256_file(path) and artifact["size"] == path.stat().st_size
        assert Path(artifact["manifest"]).is_file()
    assert dist_files(ws) == []


def test_flavor_install_only_selects_that_archive(build_workspace, run_cli, pbs_mirror, pbs_archives) -> None:
    name = pbs_mirror.name(HOST, flavor="install_only")
    pbs_mirror.add(pbs_archives.by_platform[HOST], name)
    ws = build_workspace(runtimes={VERSION: {"python": {"flavor": "install_only"}}})
    assert run_cli("-w", ws, "build", VERSION).code == 0
    assert pbs_mirror.server.count(f"/{RELEASE}/{name}") == 1
    assert 'flavor = "install_only"' in (ws / "dist" / f"{STEM}.manifest.toml").read_text()


def test_cached_sha256sums_is_reused_unless_it_lacks_the_archive(
    build_workspace, run_cli, pbs_mirror, pbs_archives
) -> None:
    ws = build_workspace()
    assert run_cli("-w", ws, "build", VERSION).code == 0
    (ws / "dist" / f"{STEM}.tar.gz").unlink()
    assert run_cli("-w", ws, "build", VERSION).code == 0
    assert pbs_mirror.server.count(f"/{RELEASE}/SHA256SUMS") == 1  # a release's archives do not change
    name = pbs_mirror.name(HOST, flavor="install_only")
    pbs_mirror.add(pbs_archives.by_platform[HOST], name)  # the mirror gained an archive since
    (ws / f"python-{VERSION}" / "config.json").write_text(json.dumps({"python": {"flavor": "install_only"}}))
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert pbs_mirror.server.count(f"/{RELEASE}/SHA256SUMS") == 2


def test_bad_platform_and_flags_are_usage_errors(build_workspace, run_cli) -> None:
    ws = build_workspace()
    assert run_cli("-w", ws, "build", VERSION, "--platform", "solaris").code == 2
    assert run_cli("-w", ws, "build", VERSION, "--platform", HOST, "--all-platforms").code == 2
    assert run_cli("-w", ws, "build").code == 2
    assert dist_files(ws) == []


def test_python_pin_writes_hashes_keeping_other_keys(build_workspace, run_cli, pbs_mirror: PbsMirror) -> None:
    platforms = [HOST, "windows-x64", "macosx-aarch64"]
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": []}, "build": {"platforms": platforms}}})
    result = run_cli("-w", ws, "python", "pin", VERSION, "-o", "json")
    assert result.code == 0, result.stderr
    expected = {key: pbs_mirror.sums[pbs_mirror.name(key)] for key in platforms}
    assert result.json()["sha256"] == expected
    data = json.loads((ws / f"python-{VERSION}" / "config.json").read_text())
    assert list(data) == ["packages", "build", "python"]
    assert data["python"]["sha256"] == expected
    # Pinned: the build no longer needs SHA256SUMS.
    (pbs_mirror.release_dir / "SHA256SUMS").unlink()
    assert run_cli("-w", ws, "build", VERSION).code == 0


def test_python_pin_pins_what_the_mirror_has_and_names_what_it_lacks(
    build_workspace, run_cli, pbs_mirror: PbsMirror
) -> None:
    ws = build_workspace()  # build.platforms defaults to all five
    served = [key for key in PLATFORM_KEYS if pbs_mirror.name(key) in pbs_mirror.sums]
    lacking = [key for key in PLATFORM_KEYS if key not in served]
    assert served and lacking
    result = run_cli("-w", ws, "python", "pin", VERSION, "-o", "json")
    assert result.code == 0, result.stderr
    assert result.json()["sha256"] == {key: pbs_mirror.sums[pbs_mirror.name(key)] for key in served}
    assert sorted(result.json()["missing"]) == sorted(lacking)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split()[1] for w in warnings] == lacking
    assert all(f"no sha256 for {pbs_mirror.name(key)}" in w for key, w in zip(lacking, warnings, strict=True))
    pinned = json.loads((ws / f"python-{VERSION}" / "config.json").read_text())["python"]["sha256"]
    assert sorted(pinned) == sorted(served)


def test_python_pin_platform_pins_only_those_and_a_lacking_one_fails(
    build_workspace, run_cli, pbs_mirror: PbsMirror
) -> None:
    ws = build_workspace()
    config = ws / f"python-{VERSION}" / "config.json"
    result = run_cli("-w", ws, "python", "pin", VERSION, "--platform", "windows-x64", "-p", HOST)
    assert result.code == 0, result.stderr
    assert json.loads(config.read_text())["python"]["sha256"] == {
        key: pbs_mirror.sums[pbs_mirror.name(key)] for key in ("windows-x64", HOST)
    }
    assert "warning" not in result.stderr
    lacking = next(key for key in PLATFORM_KEYS if pbs_mirror.name(key) not in pbs_mirror.sums)
    before = config.read_text()
    failed = run_cli("-w", ws, "python", "pin", VERSION, "--platform", HOST, "--platform", lacking)
    assert failed.code == 1
    assert failed.stderr.startswith(f"error: no sha256 for {pbs_mirror.name(lacking)}")
    assert config.read_text() == before  # nothing written, not even the platform the mirror has
    unknown = run_cli("-w", ws, "python", "pin", VERSION, "--platform", "solaris-sparc")
    assert unknown.code == 2 and "solaris-sparc" in unknown.stderr


def test_python_pin_fails_when_the_mirror_has_none_of_the_platforms(
    build_workspace, run_cli, pbs_mirror: PbsMirror
) -> None:
    lacking = [key for key in PLATFORM_KEYS if pbs_mirror.name(key) not in pbs_mirror.sums]
    ws = build_workspace(runtimes={VERSION: {"build": {"platforms": lacking}}})
    before = (ws / f"python-{VERSION}" / "config.json").read_text()
    result = run_cli("-w", ws, "python", "pin", VERSION)
    assert result.code == 1 and result.stderr.startswith("error: no sha256 for")
    assert (ws / f"python-{VERSION}" / "config.json").read_text() == before


def test_tarball_bytes_do_not_depend_on_the_mirror_and_credentials_stay_out(
    build_workspace, run_cli, pbs_mirror: PbsMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox
) -> None:
    first = build_workspace(root=tmp_path / "one")
    assert run_cli("-w", first, "build", VERSION).code == 0
    with StaticServer(pbs_mirror.root) as other:  # the same archive from another URL, with credentials
        mirror = other.url.replace("://", f"://user:{SECRET}@") + "/"
        monkeypatch.setenv("RUNENV_PBS_MIRROR", mirror)
        monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "other-cache"))  # really fetched from there
        second = build_workspace(root=tmp_path / "two")
        result = run_cli("-w", second, "build", VERSION)
        assert result.code == 0, result.stderr
        assert other.count(f"/{RELEASE}/cpython-*") == 1
    assert (first / "dist" / f"{STEM}.tar.gz").read_bytes() == (second / "dist" / f"{STEM}.tar.gz").read_bytes()
    sidecar = read_manifest(second, STEM)["interpreter"]
    assert sidecar["url"] == f"{other.url.replace('://', '://***@')}/{RELEASE}/{pbs_mirror.name(HOST)}"
    assert (
        "url"
        not in tomllib.loads(tar_member(second / "dist" / f"{STEM}.tar.gz", f"{STEM}/runenv-manifest.toml"))[
            "interpreter"
        ]
    )
    assert SECRET not in result.stdout + result.stderr
    assert grep_tree(SECRET, second, tmp_path / "other-cache") == []


def test_a_wrong_cached_sha256sums_is_fetched_again_once_the_mirror_is_fixed(
    build_workspace, run_cli, pbs_mirror: PbsMirror, sandbox
) -> None:
    name = pbs_mirror.name(HOST)
    real = pbs_mirror.set_sum(name, "0" * 64)
    ws = build_workspace()
    failed = run_cli("-w", ws, "build", VERSION)
    assert failed.code == 1 and "sha256 mismatch" in failed.stderr
    assert "nothing was cached" not in failed.stderr
    assert "SHA256SUMS" in failed.stderr.split("hint:")[1]  # the hint says the checksum list is what was cached
    again = run_cli("-w", ws, "build", VERSION)  # still wrong: the cached list is fetched once more, then fails
    assert again.code == 1 and "sha256 mismatch" in again.stderr
    assert pbs_mirror.server.count(f"/{RELEASE}/SHA256SUMS") == 2

    pbs_mirror.set_sum(name, real)  # the mirror is fixed
    fixed = run_cli("-w", ws, "build", VERSION)
    assert fixed.code == 0, fixed.stderr
    assert pbs_mirror.server.count(f"/{RELEASE}/SHA256SUMS") == 3
    assert run_cli("-w", ws, "build", VERSION).code == 0  # the good list is reused from the cache
    assert pbs_mirror.server.count(f"/{RELEASE}/SHA256SUMS") == 3


def test_a_bad_source_date_epoch_is_refused_before_anything_is_written(
    build_workspace, run_cli, pbs_mirror: PbsMirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 2 and "SOURCE_DATE_EPOCH='yesterday'" in result.stderr
    assert pbs_mirror.server.requests == [] and not (ws / "dist").exists() and leftovers(ws) == []
