"""Two real file systems for one build: the default RAM scratch beside a disk temp dir, and the reverse.

`default_scratch` unsets RUNENV_SCRATCH_DIR so runenv picks `/dev/shm/runenv-<uid>` itself, exactly as on
a user's machine; `tmpdir_in_ram` puts the system temp dir (TMPDIR) on `/dev/shm` while the scratch stays on
disk. Both skip with a reason where `/dev/shm` is no second file system, and both check that the test
left nothing behind in RAM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv import owner, scratch


def _ram_or_skip() -> Path:
    """The RAM scratch root runenv would choose, when it is on another file system than the temp dir."""
    if not owner.FLOCK or not scratch.RAM_DIR.is_dir():
        pytest.skip(f"{scratch.RAM_DIR} is absent here (or no flock): no second file system to build across")
    root = scratch.ram_scratch()
    if root is None:
        pytest.skip(f"{scratch.RAM_DIR} is not usable as RAM scratch here (noexec, or less than 6 GiB free)")
    if os.stat(root).st_dev == os.stat(tempfile.gettempdir()).st_dev:
        pytest.skip(f"{scratch.RAM_DIR} and the temp dir {tempfile.gettempdir()} are one file system here")
    return root


def _dead_leftovers(root: Path) -> set[Path]:
    """runenv directories under the scratch root whose owner is gone (what a run failed to remove)."""
    return {path for kind in scratch.KINDS for path in scratch.leftovers(root / kind)}


@pytest.fixture
def default_scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No RUNENV_SCRATCH_DIR: builds stage in the real `/dev/shm/runenv-<uid>`, temp files stay on disk.

    Other test runs may use the same root at the same time; each build owns its own locked subdirectory,
    so this only checks that none of ours (dead, not removed) is left.
    """
    monkeypatch.delenv(scratch.SCRATCH_ENV)
    root = _ram_or_skip()
    before = _dead_leftovers(root)
    yield root
    assert _dead_leftovers(root) - before == set(), f"the test left scratch directories in {root}"


@pytest.fixture
def tmpdir_in_ram(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR on `/dev/shm` (a directory of this test's own, removed after it), the scratch on disk (the sandbox's)."""
    _ram_or_skip()
    tmp = scratch.RAM_DIR / f"runenv-test-tmp-{os.getuid()}-{uuid.uuid4().hex}"
    tmp.mkdir(mode=0o700)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the temp dir it found first
    try:
        yield tmp
        assert sorted(tmp.iterdir()) == [], f"the test left temp files in {tmp}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MiB tmpfs mounted for this test (needs root or CAP_SYS_ADMIN; skipped with a reason otherwise)."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
        )
    except OSError as exc:
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
