"""Output and cache paths that cannot be used, and a cache whose disk fills: one line, the right exit code,
nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from runenv.cache import sha256_file
from tests.helpers.built import cached_blobs, dist_files
from tests.helpers.pbs import VERSION


def one_error(stderr: str) -> str:
    """The error line, after checking the output is that line (and maybe a hint), with no traceback."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and lines[0].startswith("error: ") and len(lines) <= 2, stderr
    return lines[0]


def bad_path(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that is a file, lies below a file, or has no parent; and what the error must say about it."""
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    return {
        "a-file": (afile, f"{afile} is not a directory"),
        "below-a-file": (afile / "sub", f"{afile} is not a directory"),
        "missing-parent": (tmp_path / "missing" / "deeper" / "dir", f"its parent {tmp_path}/missing/deeper does not"),
    }[kind]


KINDS = ["a-file", "below-a-file", "missing-parent"]


@pytest.mark.parametrize("kind", KINDS)
def test_build_out_that_cannot_be_a_directory_is_a_usage_error(build_workspace, run_cli, tmp_path, sandbox, kind):
    ws = build_workspace()
    out, says = bad_path(tmp_path, kind)
    result = run_cli("-w", ws, "build", VERSION, "--out", out)
    assert result.code == 2
    assert one_error(result.stderr) == f"error: --out {out}: {says}" + (" exist" if kind == "missing-parent" else "")
    assert not (tmp_path / "missing").exists() and dist_files(ws) == [] and cached_blobs(sandbox) == set()
    assert not list((ws / f"python-{VERSION}").glob("pylock.*"))


@pytest.mark.parametrize("verb", ["build", "run"])
@pytest.mark.parametrize("kind", KINDS)
def test_cache_dir_that_cannot_be_a_directory_is_a_usage_error(
    build_workspace, run_cli, tmp_path, monkeypatch, kind, verb
):
    ws = build_workspace()
    if verb == "run":  # a built runtime, so that `run` gets as far as its cache
        assert run_cli("-w", ws, "build", VERSION, "--no-verify").code == 0
    cache, says = bad_path(tmp_path, kind)
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache))
    args = ["build", VERSION] if verb == "build" else ["run", VERSION, "--", "python", "-c", "print(1)"]
    result = run_cli("-w", ws, *args)
    assert result.code == 2
    assert one_error(result.stderr).startswith(f"error: RUNENV_CACHE_DIR {cache}: {says}")
    assert not (tmp_path / "missing").exists()
    assert dist_files(ws) == ([] if verb == "build" else dist_files(ws))


def test_a_full_cache_disk_is_one_line_and_leaves_no_partial_entry(
    build_workspace, run_cli, small_tmpfs, monkeypatch, pbs_mirror
):
    """The interpreter archive (~12 MB) does not fit the 8 MiB file system holding the cache."""
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(small_tmpfs / "cache"))
    ws = build_workspace()
    result = run_cli("-w", ws, "build", VERSION)
    assert result.code == 1
    line = one_error(result.error)
    assert line.startswith("error: cannot cache ") and line.endswith("No space left on device")
    assert "file system is full" in result.stderr
    assert sorted(p.name for p in (small_tmpfs / "cache" / "tmp").iterdir()) == []
    entries = list((small_tmpfs / "cache" / "sha256").iterdir())
    assert all(sha256_file(entry) == entry.name for entry in entries)  # only whole entries (SHA256SUMS)
    assert pbs_mirror.sums[pbs_mirror.name("linux-x64")] not in {entry.name for entry in entries}
    assert dist_files(ws) == []
