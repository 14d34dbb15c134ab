"""Artifact reuse: the same inputs give the cached artifact back instead of a rebuild, never a damaged one."""

from __future__ import annotations

import shutil
from pathlib import Path

from runenv.cache import sha256_file
from runenv.compat import tomllib
from tests.helpers import HOST
from tests.helpers.pbs import VERSION

STEM = f"python-{VERSION}-{HOST}"


def _build(run_cli, ws: Path, *extra: str) -> dict:
    result = run_cli("-w", ws, "-o", "json", "build", VERSION, *extra)
    assert result.code == 0, result.stderr
    [artifact] = result.json()
    return artifact


def _workspace_like(build_workspace, first: Path, root: Path, **runtime: dict) -> Path:
    """A new workspace directory with the same config and a copy of `first`'s lock (as a clone of a repo)."""
    ws = build_workspace(root=root, runtimes={VERSION: runtime} if runtime else None)
    lock = f"python-{VERSION}/pylock.{HOST}.toml"
    shutil.copyfile(first / lock, ws / lock)
    return ws


def _entries(sandbox: Path) -> list[Path]:
    return sorted((sandbox / "runenv-cache" / "artifacts").iterdir())


def test_same_inputs_in_a_new_directory_reuse_the_verified_artifact(build_workspace, run_cli, tmp_path, sandbox):
    first = build_workspace(root=tmp_path / "a")
    built = _build(run_cli, first)
    assert built["reused"] is False and built["verify"]["ok"]
    second = _workspace_like(build_workspace, first, tmp_path / "b")
    reused = _build(run_cli, second)
    assert reused["reused"] is True
    assert reused["sha256"] == built["sha256"] == sha256_file(second / "dist" / f"{STEM}.tar.gz")
    assert reused["verify"] == built["verify"]
    sidecar = tomllib.loads((second / "dist" / f"{STEM}.manifest.toml").read_text())
    assert sidecar["verify"]["ok"] and sidecar["inputs"]["config-digest"]
    [status] = [a for a in run_cli("-w", second, "-o", "json", "check").json()["artifacts"] if a["platform"] == HOST]
    assert status["fresh"], status
    text = run_cli("-w", second, "build", VERSION)
    assert text.code == 0 and "reused" in text.stdout
    assert not list((second / "dist").glob(".*.tmp"))


def test_rebuild_builds_anew_with_the_same_bytes(build_workspace, run_cli):
    ws = build_workspace()
    built = _build(run_cli, ws)
    again = _build(run_cli, ws, "--rebuild")
    assert again["reused"] is False and again["sha256"] == built["sha256"]


def test_a_damaged_or_partial_entry_is_never_used(build_workspace, run_cli, sandbox):
    ws = build_workspace()
    built = _build(run_cli, ws)
    [entry] = _entries(sandbox)
    tarball = entry / f"{STEM}.tar.gz"
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    rebuilt = _build(run_cli, ws)
    assert rebuilt["reused"] is False and rebuilt["sha256"] == built["sha256"]
    [entry] = _entries(sandbox)  # the damaged entry was replaced by the rebuilt one
    assert sha256_file(entry / f"{STEM}.tar.gz") == built["sha256"]
    (entry / "entry.json").unlink()  # as if a build died before the entry was complete
    assert _build(run_cli, ws)["reused"] is False
    [entry] = _entries(sandbox)  # the incomplete entry gave way to a whole one, which the next build reuses
    assert (entry / "entry.json").is_file() and _build(run_cli, ws)["reused"] is True
    (entry / f"{STEM}.manifest.toml").unlink()  # as if a removal died halfway: the rest looks intact
    assert _build(run_cli, ws)["reused"] is False
    [entry] = _entries(sandbox)
    assert (entry / f"{STEM}.manifest.toml").is_file()


def test_inputs_that_change_the_bytes_are_not_reused_and_others_are(build_workspace, run_cli, tmp_path):
    first = build_workspace(root=tmp_path / "a")
    _build(run_cli, first)
    slow = _workspace_like(build_workspace, first, tmp_path / "b", build={"timeout": 900})
    assert _build(run_cli, slow)["reused"] is True  # the timeout does not change a byte
    other = _workspace_like(build_workspace, first, tmp_path / "c", build={"compression": "zst"})
    assert _build(run_cli, other)["reused"] is False


def test_a_changed_allowlist_verifies_the_reused_tarball_again(build_workspace, run_cli, tmp_path):
    first = build_workspace(root=tmp_path / "a")
    _build(run_cli, first)
    second = _workspace_like(build_workspace, first, tmp_path / "b")
    (second / "checks").mkdir()
    (second / "checks" / f"{HOST}.json").write_text("{}")
    reused = _build(run_cli, second)
    assert reused["reused"] is True and reused["verify"]["ok"]
    sidecar = tomllib.loads((second / "dist" / f"{STEM}.manifest.toml").read_text())
    assert sidecar["inputs"]["allowlist-sha256"] == sha256_file(second / "checks" / f"{HOST}.json")
