"""`runenv build` with packages: one download per artifact, lock reuse and staleness, verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import HOST
from tests.helpers.built import dist_files, leftovers, read_manifest
from tests.helpers.index import TestIndex
from tests.helpers.pbs import RELEASE, VERSION, PbsMirror

STEM = f"python-{VERSION}-{HOST}"
TOOL_A = {"packages": {"dependencies": ["tool-a"]}, "build": {"platforms": [HOST]}}


class Requests:
    """Requests the session index and the test's mirror received since the last `take()`."""

    def __init__(self, index: TestIndex, mirror: PbsMirror) -> None:
        self.servers = (index.server, mirror.server)
        self.seen = [len(s.requests) for s in self.servers]

    def take(self) -> list[str]:
        new = [path for server, seen in zip(self.servers, self.seen) for path in server.requests[seen:]]
        self.seen = [len(s.requests) for s in self.servers]
        return new


def test_shared_artifacts_download_once_and_a_rebuild_downloads_nothing(
    index, build_workspace, pbs_mirror, run_cli
) -> None:
    ws = build_workspace(runtimes={VERSION: TOOL_A, f"{VERSION}-slim": TOOL_A})
    requests = Requests(index, pbs_mirror)
    result = run_cli("-w", ws, "build", "--all", "--jobs", "2")
    assert result.code == 0, result.stderr
    fetched = requests.take()
    for artifact in (
        "/files/tool_a-1.0-py3-none-any.whl",
        "/files/helper_lib-1.2-py3-none-any.whl",
        f"/{RELEASE}/{pbs_mirror.name(HOST)}",
        f"/{RELEASE}/SHA256SUMS",
    ):
        assert fetched.count(artifact) == 1, (artifact, fetched)
    assert {f"{STEM}.tar.gz", f"python-{VERSION}-slim-{HOST}.tar.gz"} <= set(dist_files(ws))

    again = run_cli("-w", ws, "build", "--all")
    assert again.code == 0, again.stderr
    assert requests.take() == []  # fresh locks, cached wheels and interpreter


def test_locked_refuses_a_stale_lock_and_build_relocks_it(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: TOOL_A})
    assert run_cli("-w", ws, "build", VERSION).code == 0
    lock = ws / f"python-{VERSION}" / f"pylock.{HOST}.toml"
    assert run_cli("-w", ws, "build", VERSION, "--locked").code == 0  # fresh: reused

    config = ws / f"python-{VERSION}" / "config.json"
    config.write_text(json.dumps({**TOOL_A, "packages": {"dependencies": ["tool-a", "datascripts"]}}))
    before = lock.read_text()
    stale = run_cli("-w", ws, "build", VERSION, "--locked")
    assert stale.code == 1
    assert str(lock) in stale.stderr and "stale" in stale.stderr
    assert f"hint: run `runenv lock {VERSION} --platform {HOST}`" in stale.stderr
    assert lock.read_text() == before

    relocked = run_cli("-w", ws, "build", VERSION)
    assert relocked.code == 0, relocked.stderr
    assert "datascripts" in lock.read_text()
    assert "datascripts" in {p["name"] for p in read_manifest(ws, STEM)["packages"]}
    check = run_cli("-w", ws, "-o", "json", "check", VERSION)
    assert check.code == 0, check.stdout + check.stderr
    [row] = check.json()["artifacts"]
    assert row["built"] and row["fresh"] and row["changedInputs"] == []


def test_locked_without_a_lock_fails_before_building(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: TOOL_A})
    result = run_cli("-w", ws, "build", VERSION, "--locked")
    assert result.code == 1
    assert "lock is missing" in result.stderr and "runenv lock" in result.stderr
    assert dist_files(ws) == [] and leftovers(ws) == []


def test_module_failing_at_import_fails_the_build(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["tool-a", "importfails"]}}})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "'importfails'" in errors[0] and "distribution" in errors[0]
    assert "importfails is broken on purpose" in errors[0]
    assert dist_files(ws) == [] and leftovers(ws) == []


@pytest.mark.parametrize("where", ["config", "checks-file"])
def test_allowed_import_failure_passes_and_is_recorded(index, build_workspace, run_cli, where) -> None:
    allow = {"importfails": {"importfails": "broken on purpose"}}
    config = {"packages": {"dependencies": ["tool-a", "importfails"]}}
    if where == "config":
        config["verify"] = {"allow": allow}
    ws = build_workspace(runtimes={VERSION: config})
    if where == "checks-file":
        (ws / "checks").mkdir()
        (ws / "checks" / f"{HOST}.json").write_text(json.dumps(allow))
    result = run_cli("-w", ws, "-o", "json", "build", VERSION)
    assert result.code == 0, result.stderr
    [artifact] = result.json()
    verify = read_manifest(ws, STEM)["verify"]
    assert verify == artifact["verify"]
    assert verify["ok"] and verify["relocated"] and verify["failures"] == []
    assert [(a["distribution"], a["module"]) for a in verify["allowedFailures"]] == [("importfails", "importfails")]
    assert verify["imports"]["allowed"] == ["importfails: importfails: ImportError: importfails is broken on purpose"]
    assert verify["imports"]["modules"] == 3 and verify["imports"]["scripts"] == 1  # tool_a, helper_lib, importfails


def test_no_verify_skips_verification(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["importfails"]}}})
    result = run_cli("-w", ws, "-o", "json", "build", VERSION, "--no-verify")
    assert result.code == 0, result.stderr
    assert result.json()[0]["verify"] is None
    assert "verify" not in read_manifest(ws, STEM)


def test_failed_verification_keeps_the_previous_good_artifact(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["tool-a"]}}})
    first = run_cli("-w", ws, "-o", "json", "build", VERSION)
    assert first.code == 0, first.stderr
    before = {name: (ws / "dist" / name).read_bytes() for name in dist_files(ws)}
    config = ws / f"python-{VERSION}" / "config.json"
    config.write_text(json.dumps({"packages": {"dependencies": ["tool-a", "importfails"]}}))
    assert run_cli("-w", ws, "build", VERSION).code == 1
    assert {name: (ws / "dist" / name).read_bytes() for name in dist_files(ws)} == before
    assert leftovers(ws) == []


def test_offline_build_needs_a_fresh_lock(index, build_workspace, run_cli) -> None:
    ws = build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["tool-a"]}}})
    assert run_cli("-w", ws, "build", VERSION).code == 0  # fills the cache and writes the lock
    assert run_cli("-w", ws, "build", VERSION, "--offline").code == 0  # cache + fresh lock: no network
    config = ws / f"python-{VERSION}" / "config.json"
    config.write_text(json.dumps({"packages": {"dependencies": ["tool-a", "helper-lib"]}}))
    result = run_cli("-w", ws, "build", VERSION, "--offline")
    assert result.code == 1
    assert f"offline, and the lock of runtime {VERSION} for {HOST} is stale" in result.stderr
    assert "runenv lock" in result.stderr


@pytest.mark.parametrize("wheelhouse", [False, True])
def test_tampered_lock_is_refused_before_anything_is_written(
    index, build_workspace, run_cli, tmp_path: Path, wheelhouse: bool
) -> None:
    ws = build_workspace(runtimes={VERSION: {**TOOL_A, "build": {"platforms": [HOST], "wheelhouse": wheelhouse}}})
    assert run_cli("-w", ws, "build", VERSION).code == 0  # the wheels are in the cache now
    lock = ws / f"python-{VERSION}" / f"pylock.{HOST}.toml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hop = "..%2F" * 12 + "%2F".join(elsewhere.parts[1:])
    evil = f"{index.url}/files/{hop}%2Fhelper_lib-1.2-py3-none-any.whl"
    lock.write_text(lock.read_text().replace(f"{index.url}/files/helper_lib-1.2-py3-none-any.whl", evil))
    assert evil in lock.read_text()
    before = sorted(p.name for p in (ws / "dist").iterdir())
    for _ in range(2):
        result = run_cli("-w", ws, "build", VERSION, "--locked")
        assert result.code == 2, result.stderr
        assert str(lock) in result.stderr and "helper-lib" in result.stderr
        assert "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (ws / "dist").iterdir()) == before and leftovers(ws) == []
