"""The built-in PBS catalogue, its generator, default release choice and `runenv python list`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runenv.build.interpreter.catalogue import BUILTIN_CATALOGUE, load_catalogue
from runenv.build.interpreter.pbs import runtime_release
from runenv.config import load_runtime_config
from runenv.errors import ConfigError
from runenv.platforms import PLATFORMS
from runenv.workspace import Workspace
from tests.conftest import REPO, write_json

TRIPLES = {p.pbs_triple for p in PLATFORMS.values()}
# Published by python-build-standalone for release 20250517 (as recorded in uv's download metadata).
LINUX_3_12_10_20250517 = "0356bd1db292781a20e011d789f0c41ea5ec04731c8236c8185b53a54faf2871"


def loaded(make_workspace, name: str, runtime: dict | None = None, shared: dict | None = None):
    ws = make_workspace(shared={"python": {}, **(shared or {})}, runtimes={name: runtime or {}})
    workspace = Workspace(ws)
    return load_runtime_config(workspace, workspace.runtime(name))


def test_builtin_catalogue_holds_only_what_runenv_builds() -> None:
    data = json.loads(BUILTIN_CATALOGUE.read_text())
    assert "astral-sh/uv" in data["source"] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["generated"])
    seen_triples, seen_flavors = set(), set()
    for release, versions in data["releases"].items():
        assert re.fullmatch(r"\d{8}", release)
        for version, flavors in versions.items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version)  # no pre-releases
            for flavor, by_triple in flavors.items():
                seen_flavors.add(flavor)
                seen_triples |= set(by_triple)
                assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in by_triple.values())
    assert seen_triples == TRIPLES and seen_flavors == {"install_only", "install_only_stripped"}
    assert BUILTIN_CATALOGUE.stat().st_size < 400_000


def test_catalogue_knows_3_12_10_and_its_newest_release() -> None:
    catalogue = load_catalogue()
    assert catalogue.releases_of("3.12.10")[0] == "20250529"
    assert "20250517" in catalogue.releases_of("3.12.10")
    linux = "x86_64-unknown-linux-gnu"
    assert catalogue.sha256("20250517", "3.12.10", "install_only_stripped", linux) == LINUX_3_12_10_20250517
    assert catalogue.default_release("3.12.10", "install_only_stripped", TRIPLES) == "20250529"


def test_default_release_follows_build_platforms(make_workspace) -> None:
    assert runtime_release(loaded(make_workspace, "3.12.10")) == "20250529"
    # 3.11.7 is catalogued in one release, for four of the five platforms.
    catalogue = load_catalogue()
    lacking = sorted(TRIPLES - catalogue.triples("20240107", "3.11.7"))
    assert len(lacking) == 1
    missing_key = next(p.key for p in PLATFORMS.values() if p.pbs_triple == lacking[0])
    with pytest.raises(ConfigError, match=f"the newest, 20240107, lacks {missing_key}"):
        runtime_release(loaded(make_workspace, "3.11.7"))
    others = [k for k in PLATFORMS if k != missing_key]
    assert runtime_release(loaded(make_workspace, "3.11.7", {"build": {"platforms": others}})) == "20240107"
    # An explicit release wins, catalogued or not.
    assert runtime_release(loaded(make_workspace, "3.12.10", {"python": {"release": "20990101"}})) == "20990101"


def test_unknown_version_names_the_newest_patch_releases(make_workspace) -> None:
    with pytest.raises(ConfigError) as info:
        runtime_release(loaded(make_workspace, "3.12.99"))
    assert info.value.message.endswith("newest catalogued 3.12 releases: 3.12.14, 3.12.13, 3.12.12")
    assert "python-3.12.99/config.json: Python 3.12.99 is not in runenv's PBS catalogue" in info.value.message
    with pytest.raises(ConfigError, match=r"no 3\.99\.x is catalogued \(catalogued: 3\.14, 3\.13"):
        runtime_release(loaded(make_workspace, "3.99.1"))


def test_bad_release_tags_are_config_errors_in_validate(make_workspace, run_cli) -> None:
    for bad in ("2025/0517", "20250517\x00", "latest", "../20250517", "202505170"):
        ws = make_workspace(shared={"python": {"release": bad}}, root=make_workspace().parent / "bad")
        result = run_cli("-w", ws, "config", "validate")
        assert result.code == 2, bad
        assert "shared-config.json: python.release: invalid python.release" in result.stderr, bad
        assert "8 digits YYYYMMDD" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_catalogue_override_must_be_readable(make_workspace, run_cli, monkeypatch, tmp_path) -> None:
    ws = make_workspace(shared={"python": {}})
    monkeypatch.setenv("RUNENV_PBS_CATALOGUE", str(tmp_path / "missing.json"))
    result = run_cli("-w", ws, "config", "validate")
    assert result.code == 2 and "RUNENV_PBS_CATALOGUE=" in result.stderr and "missing.json" in result.stderr
    write_json(tmp_path / "bad.json", {"releases": {"20250517": ["not", "a", "table"]}})
    monkeypatch.setenv("RUNENV_PBS_CATALOGUE", str(tmp_path / "bad.json"))
    result = run_cli("python", "list")
    assert result.code == 2 and "releases.20250517: expected" in result.stderr and "Traceback" not in result.stderr


def test_python_list_text_and_json(run_cli) -> None:
    minor = run_cli("python", "list", "3.12")
    assert minor.code == 0
    assert re.search(r"^3\.12\.10\s+20250529\s+4$", minor.stdout, re.M)
    assert "3.13" not in minor.stdout
    exact = run_cli("-o", "json", "python", "list", "3.12.10")
    data = exact.json()
    assert data["catalogue"].startswith("runenv's PBS catalogue") and "astral-sh/uv" in data["source"]
    [row] = data["versions"]
    assert row["version"] == "3.12.10" and row["newestRelease"] == "20250529"
    release = next(r for r in row["releases"] if r["release"] == "20250517")
    linux = next(a for a in release["archives"] if a["platform"] == "linux-x64")
    assert linux == {
        "platform": "linux-x64",
        "triple": "x86_64-unknown-linux-gnu",
        "flavor": "install_only_stripped",
        "sha256": LINUX_3_12_10_20250517,
    }
    assert LINUX_3_12_10_20250517 in run_cli("python", "list", "3.12.10").stdout
    everything = run_cli("-o", "json", "python", "list").json()["versions"]
    assert len(everything) > 50 and everything[0]["version"].startswith("3.")
    unknown = run_cli("python", "list", "3.12.99")
    assert unknown.code == 2 and "newest catalogued 3.12 releases: 3.12.14" in unknown.stderr
    assert run_cli("python", "list", "three").code == 2


def test_generator_keeps_cpython_builds_runenv_uses(tmp_path: Path) -> None:
    base = "https://example.invalid/releases/download/20250517/"

    def entry(file: str, sha: str, name: str = "cpython", variant: str | None = None, pre: str | None = None) -> dict:
        return {
            "name": name,
            "url": base + file.replace("+", "%2B"),
            "sha256": sha,
            "variant": variant,
            "prerelease": pre,
        }

    kept = "cpython-3.12.10+20250517-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    metadata = {
        "a": entry(kept, "a" * 64),
        "b": entry("cpython-3.12.10+20250517-x86_64-pc-windows-msvc-install_only.tar.gz", "b" * 64),
        "c": entry("cpython-3.12.10+20250517-x86_64-unknown-linux-musl-install_only_stripped.tar.gz", "c" * 64),
        "d": entry("cpython-3.12.10+20250517-x86_64-unknown-linux-gnu-freethreaded-install_only.tar.gz", "d" * 64),
        "e": entry(kept.replace("3.12.10", "3.14.0rc1"), "e" * 64, pre="rc1"),
        "f": entry("pypy3.10-v7.3.19-linux64.tar.bz2", "f" * 64, name="pypy"),
        "g": entry(kept.replace("install_only_stripped", "debug-full"), "0" * 64, variant="debug"),
    }
    source = write_json(tmp_path / "download-metadata.json", metadata)
    out = tmp_path / "catalogue.json"
    script = REPO / "scripts" / "gen_pbs_catalogue.py"
    proc = subprocess.run([sys.executable, script, source, "--out", out], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["source"] == "download-metadata.json" and data["generator"] == "scripts/gen_pbs_catalogue.py"
    assert data["releases"] == {
        "20250517": {
            "3.12.10": {
                "install_only": {"x86_64-pc-windows-msvc": "b" * 64},
                "install_only_stripped": {"x86_64-unknown-linux-gnu": "a" * 64},
            }
        }
    }
    conflicting = write_json(tmp_path / "other.json", {"a": entry(kept, "9" * 64)})
    proc = subprocess.run([sys.executable, script, source, conflicting, "--out", out], capture_output=True, text=True)
    assert proc.returncode != 0 and kept in proc.stderr
