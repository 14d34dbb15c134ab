"""A build killed (SIGKILL) or stopped (SIGTERM) mid-way, in a real subprocess: what is left, and who removes it.

The PBS mirror trickles the interpreter archive, so the build is caught with a partial download in the
cache, its staging directory in the scratch root and its packing directory in dist/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runenv import owner
from tests.conftest import REPO, run_runenv, start_runenv
from tests.helpers.pbs import VERSION, PbsMirror

pytestmark = pytest.mark.skipif(not owner.FLOCK, reason="owner locks need flock (POSIX)")

STEM = f"python-{VERSION}-linux-x64"
WAIT = 120  # seconds to wait for a state the build reaches on its own (a deadline, not a measurement)


def wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    """Poll until `ready()`; fails naming `what` if the build ends first or the deadline passes."""
    deadline = time.monotonic() + WAIT
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"the build ended ({proc.returncode}) before {what}: {proc.stderr.read() if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the build did not reach {what}")
        time.sleep(0.05)


def temporaries(ws: Path, sandbox: Path) -> dict[str, list[str]]:
    """Every temp file and directory a build may leave, by where it is."""

    def names(directory: Path, keep: Callable[[str], bool] = lambda _name: True) -> list[str]:
        return sorted(p.name for p in directory.iterdir() if keep(p.name)) if directory.is_dir() else []

    scratch = Path(os.environ["RUNENV_SCRATCH_DIR"])
    return {
        "cache/tmp": names(sandbox / "runenv-cache" / "tmp"),
        "dist": names(ws / "dist", lambda name: name.startswith(".")),
        "scratch/build": names(scratch / "build"),
        "scratch/verify": names(scratch / "verify"),
        "temp": names(Path(os.environ["TMPDIR"])),
    }


def nothing_left(ws: Path, sandbox: Path) -> dict[str, list[str]]:
    return {where: [] for where in temporaries(ws, sandbox)}


def mid_download(ws: Path, sandbox: Path, mirror: PbsMirror) -> subprocess.Popen[str]:
    """A build started against the trickling mirror, once its partial download has bytes in the cache."""
    mirror.server.trickle("*.tar.gz")
    proc = start_runenv("-w", ws, "build", VERSION)
    parts = sandbox / "runenv-cache" / "tmp"
    wait_for(
        "a partial download in the cache",
        lambda: any(p.name.startswith("part-") and p.stat().st_size > 0 for p in parts.glob("part-*")),
        proc,
    )
    return proc


def test_kill_9_mid_build_leaves_owned_temporaries_that_cleanup_lists_and_the_next_build_sweeps(
    build_workspace, pbs_mirror, sandbox
) -> None:
    ws = build_workspace()
    proc = mid_download(ws, sandbox, pbs_mirror)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=WAIT) == -signal.SIGKILL
    proc.communicate()
    left = temporaries(ws, sandbox)
    assert [n[:5] for n in left["cache/tmp"]] == ["part-"]
    assert [n.startswith(f".{STEM}.") and n.endswith(".tmp") for n in left["dist"]] == [True]
    assert [n.startswith(f"runenv-{STEM}.") for n in left["scratch/build"]] == [True]

    listed = run_runenv("-w", ws, "-o", "json", "cleanup", "--dry-run")
    assert listed.code == 0, listed.stderr
    paths = {Path(item["path"]).name for item in listed.json()["items"]}
    assert {left["cache/tmp"][0], left["dist"][0], left["scratch/build"][0]} <= paths

    pbs_mirror.server.hurry()
    rebuilt = run_runenv("-w", ws, "build", VERSION)
    assert rebuilt.code == 0, rebuilt.stderr
    assert temporaries(ws, sandbox) == nothing_left(ws, sandbox)
    assert sorted(p.name for p in (ws / "dist").iterdir()) == sorted(
        [f"{STEM}.tar.gz", f"{STEM}.tar.gz.sha256", f"{STEM}.manifest.toml"]
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_mid_build_clean_up_everything(build_workspace, pbs_mirror, sandbox, signum) -> None:
    ws = build_workspace()
    proc = mid_download(ws, sandbox, pbs_mirror)
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 128 + signum
    # the phases finished before the signal, then one line saying how the build ended
    assert err.strip().splitlines()[-1] == ("terminated" if signum == signal.SIGTERM else "interrupted")
    assert "Traceback" not in err and "error" not in err
    assert temporaries(ws, sandbox) == nothing_left(ws, sandbox)
    assert not list((ws / "dist").glob("*.tar.gz"))


HOLDER = """
import os, signal, sys
from runenv.owner import temp_dir
with temp_dir(sys.argv[1]) as path:
    (path / "pylock.toml").write_text("half a lock")
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_temp_dirs_of_killed_runs_are_listed_by_cleanup_and_swept_by_the_next_run(make_workspace, run_cli) -> None:
    """`runenv-lock.*`, `runenv-wheels.*`, … in the system temp dir carry owner locks like scratch directories."""
    ws = make_workspace()
    temp = Path(os.environ["TMPDIR"])
    (temp / "runenv-lock.not-ours").mkdir()  # no owner marker: not runenv's, never removed
    killed = subprocess.run(
        [sys.executable, "-c", HOLDER, "lock"], capture_output=True, text=True, cwd=REPO, env=os.environ
    )
    assert killed.returncode == -signal.SIGKILL
    dead = Path(killed.stdout.strip())
    assert dead.parent == temp and (dead / "pylock.toml").is_file()
    listed = run_cli("-w", ws, "-o", "json", "cleanup", "--dry-run")
    assert [(item["path"], item["kind"]) for item in listed.json()["items"]] == [(str(dead), "scratch")]
    with owner.temp_dir("wheels") as mine:
        assert not dead.exists() and mine.is_dir()
    assert sorted(p.name for p in temp.iterdir()) == ["runenv-lock.not-ours"]
