"""`runenv ci github`: the workflow passes actionlint, and its scripts build exactly what the configs name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

RUNTIMES = {
    "3.11.7": {},
    "3.12.10": {"build": {"native": ["macosx-aarch64"], "runners": {"macosx-aarch64": "macos-14"}}},
    "3.13.1-slim": {"build": {"platforms": ["linux-x64", "windows-x64"], "hooks": {"beforePack": "true"}}},
}


@pytest.fixture
def repo(make_workspace, tmp_path) -> Path:
    """A git checkout whose root is the workspace."""
    ws = make_workspace(runtimes=RUNTIMES, root=tmp_path / "repo")
    (ws / ".git").mkdir()
    return ws


def actionlint(path: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("actionlint")
    if tool is None:
        pytest.skip("actionlint is not installed (the test extra installs it)")
    return subprocess.run([tool, str(path)], cwd=path.parents[2], capture_output=True, text=True)


def fake_runenv(bin_dir: Path, log: Path, real: bool = False) -> dict[str, str]:
    """A `runenv` on PATH: the real one of this checkout, or one that records its arguments (one JSON line a call)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "runenv"
    if real:
        script.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" -m runenv "$@"\n')
    else:
        script.write_text(
            f'#!{sys.executable}\nimport json, sys\nopen("{log}", "a").write(json.dumps(sys.argv[1:]) + "\\n")\n'
        )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def step(workflow: dict, job: str, name_or_id: str) -> dict:
    return next(s for s in workflow["jobs"][job]["steps"] if name_or_id in (s.get("name"), s.get("id")))


def run_step(script: str, env: dict[str, str], cwd: Path) -> None:
    subprocess.run(["bash", "-e", "-c", script], env=env, cwd=cwd, check=True)


def test_workflow_passes_actionlint(repo, run_cli):
    result = run_cli("-w", repo, "ci", "github")
    assert result.code == 0, result.stderr
    path = repo / ".github/workflows/runenv.yml"
    assert result.stdout.strip() == f"written {path}"
    lint = actionlint(path)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_workflow_builds_exactly_the_configured_platforms(repo, run_cli, tmp_path):
    assert run_cli("-w", repo, "ci", "github").code == 0
    workflow = yaml.safe_load((repo / ".github/workflows/runenv.yml").read_text())
    build = workflow["jobs"]["build"]
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    assert build["runs-on"] == "${{ matrix.runner }}"
    assert workflow["jobs"]["matrix"]["outputs"]["matrix"] == "${{ steps.matrix.outputs.matrix }}"

    # The matrix step, run with the real runenv, hands GitHub the same matrix `runenv matrix` gives.
    output = tmp_path / "github-output"
    env = {**fake_runenv(tmp_path / "real", tmp_path / "unused", real=True), "GITHUB_OUTPUT": str(output)}
    run_step(step(workflow, "matrix", "matrix")["run"], env, repo)
    head, body = output.read_text().split("\n", 1)
    assert head == "matrix<<RUNENV_MATRIX_EOF" and body.endswith("\nRUNENV_MATRIX_EOF\n")
    matrix = json.loads(body.removesuffix("RUNENV_MATRIX_EOF\n"))
    assert matrix == run_cli("-w", repo, "matrix", "--all", "-o", "json").json()
    native = {(j["runtime"], j["platforms"][0]): j["runner"] for j in matrix["include"] if j["kind"] == "native"}
    assert native == {
        ("3.12.10", "macosx-aarch64"): "macos-14",
        ("3.13.1-slim", "linux-x64"): "ubuntu-latest",
        ("3.13.1-slim", "windows-x64"): "windows-latest",
    }

    # The build step, run once per matrix entry, builds every configured (runtime, platform) exactly once.
    calls = tmp_path / "calls"
    env = fake_runenv(tmp_path / "fake", calls)
    build_step = step(workflow, "build", "runenv build")
    for job in matrix["include"]:
        values = {"${{ matrix.runtime }}": job["runtime"], "${{ matrix.platformArgs }}": job["platformArgs"]}
        run_step(build_step["run"], {**env, **{k: values[v] for k, v in build_step["env"].items()}}, repo)
    built = []
    for line in calls.read_text().splitlines():
        args = json.loads(line)
        assert args[0] == "build"
        built += [(args[1], p) for flag, p in zip(args[2::2], args[3::2], strict=True) if flag == "--platform"]
    five = ["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]
    expected = [("3.11.7", p) for p in five] + [("3.12.10", p) for p in five]
    expected += [("3.13.1-slim", "linux-x64"), ("3.13.1-slim", "windows-x64")]
    assert sorted(built) == sorted(expected)

    # Every build job's upload is one the publish job downloads, and every download dir goes to --from.
    assert build["steps"][-1]["with"]["name"] == "${{ matrix.artifact }}"
    pattern = next(
        s["with"]["pattern"] for s in workflow["jobs"]["publish"]["steps"] if "download" in s.get("uses", "")
    )
    assert pattern == "dist-*" and all(j["artifact"].startswith("dist-") for j in matrix["include"])
    gathered = tmp_path / "gh"
    for job in matrix["include"]:
        (gathered / "runner-dist" / job["artifact"]).mkdir(parents=True)
    calls.unlink()
    publish = step(workflow, "publish", "runenv publish")
    run_step(publish["run"], {**env, "GITHUB_WORKSPACE": str(gathered), "RUNENV_PUBLISH_TARGET": "s3://b/p"}, repo)
    args = json.loads(calls.read_text())
    assert args[:2] == ["publish", "--all"] and args[-2:] == ["--to", "s3://b/p"]
    assert sorted(Path(a).name for a in args[3:-2:2]) == sorted(j["artifact"] for j in matrix["include"])
    assert set(args[2:-2:2]) == {"--from"}


def test_existing_different_workflow_is_kept_unless_forced(repo, run_cli):
    path = repo / ".github/workflows/runenv.yml"
    path.parent.mkdir(parents=True)
    path.write_text("name: mine\n")
    refused = run_cli("-w", repo, "ci", "github")
    assert refused.code == 2 and "--force" in refused.stderr and str(path) in refused.stderr
    assert path.read_text() == "name: mine\n"
    assert run_cli("-w", repo, "ci", "github", "--force").stdout.strip() == f"replaced {path}"
    assert run_cli("-w", repo, "ci", "github").stdout.strip() == f"unchanged {path}"


def test_workspace_below_the_repository_root(make_workspace, run_cli, tmp_path):
    ws = make_workspace(runtimes={"3.12.10": {}}, root=tmp_path / "checkout" / "runtimes")
    (tmp_path / "checkout" / ".git").mkdir()
    (ws / "python-3.12.10" / "pylock.linux-x64.toml").write_text("")
    assert run_cli("-w", ws, "ci", "github").code == 0
    path = tmp_path / "checkout/.github/workflows/runenv.yml"
    workflow = yaml.safe_load(path.read_text())
    assert workflow["defaults"]["run"]["working-directory"] == "runtimes"
    assert workflow["jobs"]["build"]["steps"][-1]["with"]["path"] == "runtimes/dist/"
    assert "runtimes/**/pylock.*.toml" in workflow["jobs"]["build"]["steps"][3]["with"]["key"]
    assert "--locked" in step(workflow, "build", "runenv build")["run"]  # locks are committed: CI uses them
    lint = actionlint(path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
