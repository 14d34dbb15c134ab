"""Building from the PBS catalogue: no `python` section, hashes from the catalogue, a mirror's other bytes refused.

The loopback mirror's archives are made from the test interpreter, so the `pbs_catalogue` fixture supplies a
catalogue describing them (`RUNENV_PBS_CATALOGUE`), the way the built-in one describes real PBS releases.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_json
from tests.helpers import HOST
from tests.helpers.built import cached_blobs, dist_files, leftovers, read_manifest
from tests.helpers.pbs import MINOR, RELEASE, VERSION, PbsMirror

STEM = f"python-{VERSION}-{HOST}"
SERVED = ["linux-x64", "windows-x64", "macosx-aarch64"]  # the platforms the loopback mirror has archives for


def seed_workspace(build_workspace, runtimes: dict | None = None, root: Path | None = None) -> Path:
    """A workspace written as the seed system writes one: no `python` section anywhere."""
    ws = build_workspace(runtimes=runtimes or {VERSION: {}}, root=root)
    write_json(ws / "shared-config.json", {"build": {"platforms": SERVED}})
    return ws


def test_no_python_section_builds_from_the_catalogue_without_sha256sums(
    build_workspace, pbs_catalogue, pbs_mirror: PbsMirror, run_cli
) -> None:
    ws = seed_workspace(build_workspace)
    assert run_cli("-w", ws, "config", "validate").code == 0
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    interpreter = read_manifest(ws, STEM)["interpreter"]
    assert interpreter["release"] == RELEASE and interpreter["sha256"] == pbs_mirror.sums[pbs_mirror.name(HOST)]
    assert pbs_mirror.server.count("*SHA256SUMS") == 0  # the catalogue's hash is trusted; the mirror is not asked


def test_mirror_serving_other_bytes_is_refused(
    build_workspace, pbs_catalogue, pbs_mirror: PbsMirror, pbs_archives, run_cli, sandbox
) -> None:
    name = pbs_mirror.name(HOST)
    pbs_mirror.add(pbs_archives.by_platform["windows-x64"], name)  # other bytes, and a SHA256SUMS that agrees
    ws = seed_workspace(build_workspace)
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    first = result.error.splitlines()[0]
    assert first.startswith(f"error: sha256 mismatch for {name}") and "expected hash from the PBS catalogue" in first
    assert "serves other bytes" in result.stderr and "Traceback" not in result.stderr
    assert dist_files(ws) == [] and leftovers(ws) == []
    assert pbs_mirror.sums[name] not in cached_blobs(sandbox)


def test_explicit_pin_and_uncatalogued_release_still_win(
    build_workspace, pbs_catalogue, pbs_mirror: PbsMirror, pbs_archives, run_cli
) -> None:
    pinned = seed_workspace(build_workspace, runtimes={VERSION: {"python": {"sha256": {HOST: "1" * 64}}}})
    result = run_cli("-w", pinned, "build", VERSION)
    assert result.code == 1 and "expected hash from config pin" in result.stderr

    # A release the catalogue does not know: its SHA256SUMS gives the hash, as before the catalogue.
    newer = PbsMirror(pbs_mirror.root, pbs_mirror.server, release="20990102")
    newer.release_dir.mkdir()
    newer.add(pbs_archives.by_platform[HOST], newer.name(HOST))
    ws = seed_workspace(
        build_workspace, runtimes={VERSION: {"python": {"release": "20990102"}}}, root=pinned.parent / "b"
    )
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 0, result.stderr
    assert read_manifest(ws, STEM)["interpreter"]["release"] == "20990102"
    assert pbs_mirror.server.count("/20990102/SHA256SUMS") == 1


def test_default_release_must_ship_every_platform_in_build_platforms(
    build_workspace, pbs_catalogue, pbs_mirror: PbsMirror, run_cli
) -> None:
    ws = seed_workspace(build_workspace)
    write_json(ws / "shared-config.json", {"build": {"platforms": [*SERVED, "linux-aarch64"]}})
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 2
    assert f"no catalogued release ships Python {VERSION} for every platform" in result.stderr
    assert f"{RELEASE}, lacks linux-aarch64" in result.stderr
    assert dist_files(ws) == [] and pbs_mirror.server.count("*cpython-*") == 0


def test_uncatalogued_version_is_refused_before_anything_is_written(
    build_workspace, pbs_catalogue, pbs_mirror: PbsMirror, run_cli
) -> None:
    unknown = f"{MINOR}.99"
    ws = seed_workspace(build_workspace, runtimes={VERSION: {}, f"{unknown}-slim": {}})
    validate = run_cli("-w", ws, "-o", "json", "config", "validate")
    assert validate.code == 2
    errors = {r["runtime"]: r.get("error") for r in validate.json()["runtimes"]}
    assert errors[VERSION] is None
    message = errors[f"{unknown}-slim"]
    assert f"python-{unknown}-slim/config.json: Python {unknown} is not in the PBS catalogue" in message
    assert message.endswith(f"newest catalogued {MINOR} releases: {VERSION}")
    result = run_cli("-w", ws, "build", f"{unknown}-slim")
    assert result.code == 2 and f"Python {unknown} is not in" in result.stderr
    assert dist_files(ws) == [] and pbs_mirror.server.count("*") == 0
