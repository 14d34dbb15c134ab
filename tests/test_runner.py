"""`runenv run` and `runenv activate` with a real built runtime tarball."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import run_runenv
from tests.helpers.runtime_prefix import PY_VERSION, STEM


def test_run_python_passes_arguments_and_exit_code(runtime_workspace):
    code = "import sys; print(sys.prefix); print(sys.argv[1:]); sys.exit(7)"
    result = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "python", "-c", code, "a b", "--flag")
    assert result.code == 7, result.stderr
    prefix, args = result.stdout.splitlines()
    assert args == "['a b', '--flag']"
    cache = Path(os.environ["RUNENV_CACHE_DIR"]) / "runtimes"
    assert Path(prefix).parent.parent == cache and Path(prefix).name == STEM


def test_run_console_script_and_reuse_of_the_unpacked_copy(runtime_workspace):
    first = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "goodpkg", "3", "--verbose")
    assert first.code == 3 and first.stdout.strip() == "goodpkg 1.0 3 --verbose"
    unpacked = list((Path(os.environ["RUNENV_CACHE_DIR"]) / "runtimes").iterdir())
    assert len(unpacked) == 1 and len(unpacked[0].name) == 64  # keyed by the tarball's sha256
    marker = unpacked[0] / STEM / "marker"
    marker.write_text("still here")
    again = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "python3", "-c", "pass")
    assert again.code == 0 and marker.exists()  # not unpacked a second time


def test_run_unknown_command_and_unbuilt_runtime_are_one_line_errors(runtime_workspace):
    missing = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "no-such-command-here")
    assert missing.code == 2 and "no-such-command-here" in missing.stderr and "Traceback" not in missing.stderr
    (runtime_workspace / "dist" / f"{STEM}.tar.gz").unlink()
    unbuilt = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "python", "-c", "pass")
    assert unbuilt.code == 1 and "is not built for linux-x64" in unbuilt.stderr
    other = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--platform", "windows-x64", "--", "python")
    assert other.code == 2 and "cannot run a windows-x64 runtime" in other.stderr


def test_activate_puts_the_runtime_first_on_path(runtime_workspace, tmp_path):
    result = run_runenv("-w", runtime_workspace, "activate", PY_VERSION)
    assert result.code == 0, result.stderr
    script = 'eval "$1"; command -v goodpkg; python3 -c "import sys; print(sys.prefix)"; goodpkg --version'
    shell = subprocess.run(
        ["sh", "-c", script, "sh", result.stdout],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert shell.returncode == 0, shell.stderr
    where, prefix, version = shell.stdout.splitlines()
    assert Path(where) == Path(prefix) / "bin" / "goodpkg"
    assert Path(prefix).name == STEM and version == "goodpkg 1.0 --version"


def test_run_never_serves_the_unpack_of_bytes_that_changed(runtime_workspace):
    assert run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "python3", "-c", "pass").code == 0
    tarball = runtime_workspace / "dist" / f"{STEM}.tar.gz"
    st = tarball.stat()
    data = bytearray(tarball.read_bytes())
    data[-100] ^= 0xFF  # damaged in place, size and mtime kept
    tarball.write_bytes(bytes(data))
    os.utime(tarball, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = run_runenv("-w", runtime_workspace, "run", PY_VERSION, "--", "python3", "-c", "print('ran')")
    assert again.code == 1 and "ran" not in again.stdout
    assert again.stderr.startswith("error: ") and "Traceback" not in again.stderr
