"""`runenv publish` to a directory target, the refusals every target shares, and the pure decisions."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from runenv.publish import decide
from runenv.publish.artifacts import LocalArtifact
from runenv.publish.catalogue import with_entries
from runenv.publish.targets.base import RemoteFile
from runenv.publish.targets.registry import choose_target
from tests.helpers.dist import make_artifact, read_catalogue


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_first_publish_lays_out_files_and_catalogue(run_cli, dist_workspace, tmp_path):
    target = tmp_path / "store"
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", f"file://{target}")
    assert result.code == 0, result.stderr
    assert "uploaded" in result.stdout and "python-3.12.10-linux-x64.tar.gz" in result.stdout
    dist = dist_workspace / "dist"
    for platform in ("linux-x64", "windows-x64"):
        folder = target / "3.12.10" / platform
        stem = f"python-3.12.10-{platform}"
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [f"{stem}.tar.gz", f"{stem}.tar.gz.sha256", f"{stem}.manifest.toml"]
        )
        assert (folder / f"{stem}.tar.gz").read_bytes() == (dist / f"{stem}.tar.gz").read_bytes()
    assert not (target / "3.12.10" / "macosx-aarch64").exists()  # configured but not built: not requested
    assert not [p for p in target.rglob("*.tmp")]


def test_tarball_is_fetchable_through_the_catalogue(run_cli, dist_workspace, tmp_path):
    target = tmp_path / "store"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target).code == 0
    entry = read_catalogue(target)["runtimes"]["3.12.10"]["windows-x64"]
    fetched = target / entry["file"]
    assert sha256(fetched) == entry["sha256"] == sha256(dist_workspace / "dist/python-3.12.10-windows-x64.tar.gz")
    assert entry["size"] == fetched.stat().st_size
    assert entry["python_version"] == "3.12.10"
    assert entry["published"].endswith("Z")


def test_repeat_publish_is_a_no_op(run_cli, dist_workspace, tmp_path):
    target = tmp_path / "store"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target).code == 0
    before = tree(target)
    again = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, "-o", "json")
    assert again.code == 0, again.stderr
    report = again.json()
    assert report["uploaded"] == [] and report["refused"] == []
    assert {(r["platform"], r["reason"]) for r in report["skipped"]} == {
        ("linux-x64", "already published"),
        ("windows-x64", "already published"),
    }
    assert tree(target) == before  # catalogue untouched, published times kept


def test_conflicting_bytes_are_refused_then_replaced_with_force(run_cli, dist_workspace, tmp_path):
    target = tmp_path / "store"
    assert run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target).code == 0
    old = sha256(target / "3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz")
    rebuilt = make_artifact(dist_workspace, "3.12.10", "linux-x64", salt="rebuilt")
    before = tree(target)

    refused = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target)
    assert refused.code == 1
    assert "python-3.12.10-linux-x64.tar.gz" in refused.stderr
    assert old in refused.stderr and rebuilt.sha256 in refused.stderr
    assert "--force" in refused.stderr
    assert tree(target) == before

    forced = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, "--force")
    assert forced.code == 0, forced.stderr
    assert sha256(target / "3.12.10/linux-x64/python-3.12.10-linux-x64.tar.gz") == rebuilt.sha256
    assert read_catalogue(target)["runtimes"]["3.12.10"]["linux-x64"]["sha256"] == rebuilt.sha256


def test_runtime_not_built_is_refused_with_the_build_command(run_cli, dist_workspace, tmp_path):
    result = run_cli("-w", dist_workspace, "publish", "3.11.9", "--to", tmp_path / "store")
    assert result.code == 1
    assert "3.11.9" in result.stderr and "runenv build 3.11.9" in result.stderr
    one = run_cli(
        "-w", dist_workspace, "publish", "3.12.10", "--platform", "macosx-aarch64", "--to", tmp_path / "store"
    )
    assert one.code == 1
    assert "runenv build 3.12.10 --platform macosx-aarch64" in one.stderr
    assert not (tmp_path / "store").exists()


def test_artifact_whose_lock_changed_is_refused_and_nothing_uploaded(run_cli, dist_workspace, tmp_path):
    lock = dist_workspace / "python-3.12.10" / "pylock.windows-x64.toml"
    lock.write_text('lock-version = "1.0"\n')  # a lock that did not exist when the artifact was built
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", tmp_path / "store", "-o", "json")
    assert result.code == 1
    report = result.json()
    assert [r["platform"] for r in report["refused"]] == ["windows-x64"]
    assert "changed since it was built: lock" in report["refused"][0]["reason"]
    assert report["refused"][0]["hint"] == "run `runenv build 3.12.10 --platform windows-x64`"
    assert report["uploaded"] == []
    assert not (tmp_path / "store").exists()  # linux-x64 is fine, but a refused run publishes nothing


def test_old_artifact_restored_from_a_cache_publishes(run_cli, dist_workspace, tmp_path):
    """File times never decide: configs and a lock newer than the tarball do not make it stale."""
    lock = dist_workspace / "python-3.12.10" / "pylock.windows-x64.toml"
    for path in (dist_workspace / "dist").iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    os.utime(dist_workspace / "shared-config.json")
    assert not lock.exists()
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", tmp_path / "store", "-o", "json")
    assert result.code == 0, result.stderr
    assert sorted(u["platform"] for u in result.json()["uploaded"]) == ["linux-x64", "windows-x64"]


def test_tarball_not_matching_its_sha256_is_refused(run_cli, dist_workspace, tmp_path):
    tarball = dist_workspace / "dist/python-3.12.10-linux-x64.tar.gz"
    recorded = (dist_workspace / "dist/python-3.12.10-linux-x64.tar.gz.sha256").read_text().split()[0]
    with tarball.open("ab") as fh:
        fh.write(b"tampered")
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", tmp_path / "store")
    assert result.code == 1
    assert recorded in result.stderr and sha256(tarball) in result.stderr
    assert not (tmp_path / "store").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(run_cli, dist_workspace, tmp_path):
    target = tmp_path / "store"
    result = run_cli("-w", dist_workspace, "publish", "--all", "--platform", "linux-x64", "--to", target, "--dry-run")
    assert result.code == 1  # 3.11.9 is not built
    assert "would upload" in result.stdout and "python-3.12.10-linux-x64.tar.gz" in result.stdout
    plain = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", target, "--dry-run", "-o", "json")
    assert plain.code == 0
    assert [r["platform"] for r in plain.json()["wouldUpload"]] == ["linux-x64", "windows-x64"]
    assert plain.json()["uploaded"] == []
    assert not target.exists()


def test_target_from_config_relative_to_workspace_and_env_override(run_cli, make_workspace, tmp_path, monkeypatch):
    ws = make_workspace(shared={"publish": {"target": "published"}, "build": {"platforms": ["linux-x64"]}})
    make_artifact(ws, "3.12.10", "linux-x64")
    monkeypatch.chdir(tmp_path)
    assert run_cli("-w", ws, "publish", "3.12.10").code == 0
    assert (ws / "published/index.json").is_file()
    monkeypatch.setenv("RUNENV_PUBLISH_TARGET", str(tmp_path / "from-env"))
    assert run_cli("-w", ws, "publish", "3.12.10").code == 0
    assert (tmp_path / "from-env/index.json").is_file()
    assert run_cli("-w", ws, "publish", "3.12.10", "--to", tmp_path / "from-flag").code == 0
    assert (tmp_path / "from-flag/index.json").is_file()


def test_no_target_is_a_usage_error(run_cli, dist_workspace):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10")
    assert result.code == 2
    assert "no publish target" in result.stderr and "--to" in result.stderr


def test_unsupported_scheme_is_a_usage_error(run_cli, dist_workspace):
    result = run_cli("-w", dist_workspace, "publish", "3.12.10", "--to", "ftp://user:hunter2@example.invalid/x")
    assert result.code == 2
    assert "unsupported publish target" in result.stderr and "hunter2" not in result.stderr


def _artifact(sha: str, size: int = 10) -> LocalArtifact:
    return LocalArtifact(
        "3.12.10", "linux-x64", Path("python-3.12.10-linux-x64.tar.gz"), sha, size, Path("m.toml"), "3.12.10"
    )


def test_decide():
    art = _artifact("a" * 64)
    assert decide(art, None, force=False) == ("upload", "")
    assert decide(art, RemoteFile(10, "a" * 64), force=False) == ("skip", "already published")
    action, reason = decide(art, RemoteFile(10, "b" * 64), force=False)
    assert action == "refuse" and "a" * 64 in reason and "b" * 64 in reason
    assert decide(art, RemoteFile(10, "b" * 64), force=True)[0] == "replace"
    assert decide(art, RemoteFile(11, "a" * 64), force=False)[0] == "refuse"


def test_catalogue_keeps_first_published_time_for_same_bytes():
    art = _artifact("a" * 64)
    first = with_entries({"format": 1, "runtimes": {}}, [(art, {"sha256": "a" * 64, "published": "T1"})])
    same = with_entries(first, [(art, {"sha256": "a" * 64, "published": "T2"})])
    other = with_entries(first, [(_artifact("c" * 64), {"sha256": "c" * 64, "published": "T3"})])
    assert same == first
    assert other["runtimes"]["3.12.10"]["linux-x64"]["published"] == "T3"
    assert json.dumps(first)  # serialisable


@pytest.mark.parametrize(
    ("flag", "env", "configured", "expected"),
    [
        ("oci://r/x", "env-dir", "cfg", "oci://r/x"),
        (None, "env-dir", "cfg", "env-dir"),
        (None, None, "cfg", "/ws/cfg"),
        (None, None, "https://h/p/", "https://h/p/"),
        (None, None, "/abs/dir", "/abs/dir"),
        (None, None, None, None),
    ],
)
def test_choose_target(flag, env, configured, expected):
    assert choose_target(flag, env, configured, Path("/ws")) == expected
