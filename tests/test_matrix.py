"""`runenv matrix`: native jobs where a platform needs its own runner, one cross job per runtime for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

SDIST_RUNTIME = {
    "packages": {"dependencies": ["tool-a", "sdistonly"], "resolution": {"allowSourceList": ["sdistonly"]}},
    "build": {"runners": {"linux-aarch64": "arm-self-hosted"}},
}
SLIM_RUNTIME = {
    "packages": {"dependencies": ["tool-a"], "forceSource": {"tool-a": {"macosx-aarch64": "patched"}}},
    "build": {
        "platforms": ["linux-x64", "linux-aarch64", "macosx-aarch64", "windows-x64"],
        "native": ["linux-aarch64"],
        "hooks": {"beforePack": {"windows-x64": ["signtool", "sign"]}},
    },
}


@pytest.fixture
def three_runtimes(index, make_workspace, run_cli) -> Path:
    """3.11.7 wheel-only; 3.12.10 locked with an sdist on every platform; 3.13.1-slim native by rules."""
    ws = make_workspace(
        shared={"packages": {"dependencies": ["tool-a"]}},
        runtimes={"3.11.7": {}, "3.12.10": SDIST_RUNTIME, "3.13.1-slim": SLIM_RUNTIME},
    )
    locked = run_cli("-w", ws, "lock", "3.12.10", "--all-platforms")
    assert locked.code == 0, locked.stderr
    return ws


def _jobs(run_cli, ws: Path, *args: str) -> list[dict]:
    result = run_cli("-w", ws, "matrix", *args, "-o", "json")
    assert result.code == 0, result.stderr
    return result.json()["include"]


def test_matrix_of_three_runtimes_as_json_and_table(three_runtimes, run_cli):
    jobs = {(j["runtime"], j["kind"], tuple(j["platforms"])): j for j in _jobs(run_cli, three_runtimes)}
    assert {k: j["runner"] for k, j in jobs.items()} == {
        ("3.11.7", "cross", ("linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64")): (
            "ubuntu-latest"
        ),
        ("3.12.10", "native", ("linux-x64",)): "ubuntu-latest",
        ("3.12.10", "native", ("linux-aarch64",)): "arm-self-hosted",
        ("3.12.10", "native", ("macosx-x64",)): "macos-13",
        ("3.12.10", "native", ("macosx-aarch64",)): "macos-15",
        ("3.12.10", "native", ("windows-x64",)): "windows-latest",
        ("3.13.1-slim", "native", ("linux-aarch64",)): "ubuntu-24.04-arm",
        ("3.13.1-slim", "native", ("macosx-aarch64",)): "macos-15",
        ("3.13.1-slim", "native", ("windows-x64",)): "windows-latest",
        ("3.13.1-slim", "cross", ("linux-x64",)): "ubuntu-latest",
    }
    assert jobs[("3.12.10", "native", ("macosx-x64",))]["reasons"] == ["sdistonly: sdist in pylock.macosx-x64.toml"]
    slim = {j["platforms"][0]: j["reasons"] for (rt, kind, _), j in jobs.items() if rt == "3.13.1-slim"}
    assert slim == {
        "linux-aarch64": ["listed in build.native"],
        "macosx-aarch64": ["tool-a: source"],
        "windows-x64": ["build.hooks.beforePack runs there"],
        "linux-x64": [],
    }
    cross = jobs[("3.13.1-slim", "cross", ("linux-x64",))]
    assert cross["platformArgs"] == "--platform linux-x64"
    assert len({j["artifact"] for j in jobs.values()}) == len(jobs)  # one upload name per job
    pairs = [(j["runtime"], p) for j in _jobs(run_cli, three_runtimes, "--all") for p in j["platforms"]]
    assert len(pairs) == len(set(pairs)) == 5 + 5 + 4  # every configured platform in exactly one job

    assert {j["runtime"] for j in _jobs(run_cli, three_runtimes, "3.11.7")} == {"3.11.7"}
    table = run_cli("-w", three_runtimes, "matrix", "3.13.1-slim").stdout.splitlines()
    assert table[0].split() == ["KIND", "RUNTIME", "RUNNER", "PLATFORMS", "WHY"]
    assert table[1].split()[:4] == ["native", "3.13.1-slim", "ubuntu-24.04-arm", "linux-aarch64"]
    assert len(table) == 5


def test_without_a_lock_the_plan_decides(make_workspace, run_cli):
    ws = make_workspace(runtimes={"3.12.10": {"packages": {"dependencies": ["x @ git+https://example.invalid/x"]}}})
    jobs = _jobs(run_cli, ws)
    assert {j["kind"] for j in jobs} == {"native"} and len(jobs) == 5
    assert jobs[0]["reasons"] == ["x: source"]  # the plan builds git requirements from source


def test_unknown_runner_platform_is_a_config_error(make_workspace, run_cli):
    ws = make_workspace(shared={"build": {"runners": {"macos-arm64": "macos-15"}}})
    result = run_cli("-w", ws, "matrix")
    assert result.code == 2 and "build.runners" in result.stderr
