"""Progress output (runenv/progress.py, runenv/cli/progress_ui.py): a live area on a real terminal, one line
per phase in logs, GitHub Actions groups, -q, -v, and the build log of `build.enableLogging`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from runenv.cli.progress_ui import duration
from tests.conftest import runenv_command, write_json
from tests.helpers import HOST
from tests.helpers.pbs import VERSION

STEM = f"python-{VERSION}-{HOST}"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
PHASE = re.compile(r"^ *(?P<label>\S+ \S+)  (?P<phase>[a-z-]+) +(?P<detail>.*?) *(?P<time>\d+ms|\d+\.\d\ds|\d+m\d\ds)$")


@pytest.fixture
def package_workspace(index, build_workspace) -> Path:
    return build_workspace(runtimes={VERSION: {"packages": {"dependencies": ["tool-a", "datascripts"]}}})


def run_in_terminal(*args: str | Path, env: dict[str, str] | None = None, columns: int = 100) -> tuple[int, str]:
    """Run `python -m runenv ARGS` with stdin, stdout and stderr on a `columns`×30 pseudo-terminal; its raw output."""
    argv, full_env = runenv_command(*args, env=env)
    full_env.pop("NO_COLOR", None)
    full_env.pop("RUNENV_NO_PROGRESS", None)
    full_env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES="30")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    proc = subprocess.Popen(argv, env=full_env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def plain(output: str) -> list[str]:
    """The terminal output as text lines, without escape sequences."""
    return [line.rstrip() for line in ANSI.sub("\n", output).splitlines() if line.strip()]


def phases(lines: list[str]) -> dict[str, str]:
    """{phase: its finished line} from output lines."""
    found = {}
    for line in lines:
        m = PHASE.match(line)
        if m:
            found[m["phase"]] = line
    return found


def test_cold_build_on_a_terminal_shows_live_phases_and_a_summary(package_workspace: Path) -> None:
    code, raw = run_in_terminal("-w", package_workspace, "build", VERSION)
    lines = plain(raw)
    assert code == 0, "\n".join(lines)
    assert "\x1b[?25l" in raw  # the live area hid the cursor while it redrew
    assert any(line.lstrip().startswith(("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")) for line in lines)
    done = phases(lines)
    assert {"lock", "interpreter", "downloads", "install", "byte-compile", "pack", "verify"} <= set(done), lines
    assert re.search(r"lock +\d+ packages", done["lock"])
    assert re.search(r"interpreter +cpython-.*\.tar\.gz, [\d.]+ MB at [\d.]+ MB/s", done["interpreter"])
    assert re.search(r"downloads +\d+ files, 0 cached, [\d.]+ MB at [\d.]+ MB/s", done["downloads"])
    assert re.search(r"install +\d+ packages", done["install"])
    assert re.search(r"pack +[\d.]+ MB at [\d.]+ MB/s", done["pack"])
    assert re.search(r"verify +.*modules.*, \d+/\d+ modules imported", done["verify"])
    tarball = package_workspace / "dist" / f"{STEM}.tar.gz"
    sha = (package_workspace / "dist" / f"{STEM}.tar.gz.sha256").read_text().split()[0]
    summary = [line for line in lines if line.startswith("✓ ")]
    assert len(summary) == 1, lines
    assert re.fullmatch(
        rf"✓ {VERSION} {HOST}: {re.escape(str(tarball))}  [\d.]+ MB  sha256 {sha[:12]}  in \S+", summary[0]
    ), summary


def test_warm_build_summary_says_what_was_reused(package_workspace: Path) -> None:
    assert run_in_terminal("-w", package_workspace, "build", VERSION)[0] == 0
    code, raw = run_in_terminal("-w", package_workspace, "build", VERSION)
    summary = [line for line in plain(raw) if line.startswith("✓ ")]
    assert code == 0 and len(summary) == 1
    assert summary[0].endswith("(reused: artifact)"), summary


def test_rebuild_reuses_lock_interpreter_and_downloads(package_workspace: Path) -> None:
    assert run_in_terminal("-w", package_workspace, "build", VERSION)[0] == 0
    code, raw = run_in_terminal("-w", package_workspace, "build", VERSION, "--rebuild")
    lines = plain(raw)
    summary = [line for line in lines if line.startswith("✓ ")]
    assert code == 0 and len(summary) == 1
    assert re.search(r"\(reused: .*lock", summary[0]) and "interpreter archive" in summary[0], summary
    assert re.search(r"\d+/\d+ downloads", summary[0]), summary
    assert re.search(r"interpreter +cpython-.*, cached", phases(lines)["interpreter"])


def test_no_color_and_no_progress_on_a_terminal(package_workspace: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "RUNENV_NO_PROGRESS": "1"}
    argv, full_env = runenv_command("-w", package_workspace, "build", VERSION, env=env)
    master, slave = pty.openpty()
    proc = subprocess.run(argv, env=full_env, stdin=slave, stdout=slave, stderr=slave, timeout=300)
    os.close(slave)
    raw = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        raw += data
    os.close(master)
    text = raw.decode()
    assert proc.returncode == 0
    assert "\x1b[" not in text  # neither colour nor cursor movement
    assert {"lock", "install", "pack"} <= set(phases(plain(text)))


def test_log_output_is_one_line_per_phase(package_workspace: Path, run_cli) -> None:
    result = run_cli("-w", package_workspace, "build", VERSION)
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    done = phases(lines)
    assert {"lock", "interpreter", "downloads", "install", "byte-compile", "pack", "verify"} <= set(done)
    assert all(PHASE.match(line) or line.startswith(f"{VERSION} {HOST}: ") for line in lines), lines
    assert "\x1b[" not in result.stderr
    assert result.stdout.startswith(str(package_workspace / "dist" / f"{STEM}.tar.gz"))


def test_github_actions_gets_one_group_per_artifact(package_workspace: Path, run_cli, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_cli(
        "-w", package_workspace, "build", VERSION, "--platform", HOST, "--platform", "windows-x64", "-j", "2"
    )
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    opened = [line for line in lines if line.startswith("::group::")]
    assert sorted(opened) == [f"::group::{VERSION} {HOST}", f"::group::{VERSION} windows-x64"]
    assert lines.count("::endgroup::") == 2
    # each group holds its own artifact's phases only, whatever order the parallel builds ran in
    for start in (i for i, line in enumerate(lines) if line.startswith("::group::")):
        label = lines[start].removeprefix("::group::")
        end = lines.index("::endgroup::", start)
        inside = lines[start + 1 : end]
        progress = [line for line in inside if PHASE.match(line) or line.startswith(f"{VERSION} ")]
        assert progress and all(line.startswith(label) for line in progress), inside


def test_quiet_shows_only_the_result(package_workspace: Path, run_cli) -> None:
    result = run_cli("-q", "-w", package_workspace, "build", VERSION)
    assert result.code == 0
    assert result.stderr == ""
    assert result.stdout.startswith(str(package_workspace / "dist"))


def test_verbose_shows_commands_and_cache_hits(package_workspace: Path, run_cli, monkeypatch, tmp_path) -> None:
    cold = run_cli("-v", "-w", package_workspace, "build", VERSION)
    assert cold.code == 0, cold.stderr
    assert re.search(rf"^{VERSION} {HOST}: ran: \S*uv\S* pip compile ", cold.stderr, re.M), cold.stderr
    assert f"{VERSION} {HOST}: cache hit: " not in cold.stderr  # nothing was cached yet
    assert f"{VERSION} {HOST}: exit 0" not in cold.stderr  # what commands said is for -vv
    warm = run_cli("-v", "-w", package_workspace, "build", VERSION, "--rebuild")
    assert re.search(rf"^{VERSION} {HOST}: cache hit: tool_a-\S+\.whl$", warm.stderr, re.M), warm.stderr
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(tmp_path / "empty-cache"))
    debug = run_cli("-vv", "-w", package_workspace, "build", VERSION, "--rebuild")
    assert debug.code == 0, debug.stderr
    assert re.search(rf"^{VERSION} {HOST}: downloaded tool_a-\S+\.whl \(\d+ bytes\) from http", debug.stderr, re.M)
    assert "downloaded " not in warm.stderr  # each download is a -vv line


def test_lock_and_verify_report_their_phase(package_workspace: Path, run_cli) -> None:
    locked = run_cli("-w", package_workspace, "lock", VERSION)
    assert locked.code == 0
    assert re.search(r"lock +\d+ packages", phases(locked.stderr.splitlines())["lock"])
    assert run_cli("-q", "-w", package_workspace, "build", VERSION).code == 0
    verified = run_cli("-w", package_workspace, "verify", VERSION)  # the build verified these bytes
    assert verified.code == 0, verified.stderr
    assert "(reused: these bytes passed these checks before)" in phases(verified.stderr.splitlines())["verify"]
    rechecked = run_cli("-w", package_workspace, "verify", VERSION, "--recheck")
    assert rechecked.code == 0, rechecked.stderr
    assert re.search(
        rf"verify +{STEM}\.tar\.gz: .*, \d+/\d+ modules imported", phases(rechecked.stderr.splitlines())["verify"]
    )


def test_build_log_records_phases_and_commands_and_hides_secrets(package_workspace: Path, run_cli, index) -> None:
    secret = "hunter2-very-secret"
    config = package_workspace / f"python-{VERSION}" / "config.json"
    write_json(
        config,
        {
            "packages": {"dependencies": ["tool-a"]},
            "registries": {"default": [index.simple.replace("http://", f"http://user:{secret}@")]},
        },
    )
    result = run_cli("-w", package_workspace, "build", VERSION)
    assert result.code == 0, result.stderr
    logs = sorted((package_workspace / ".runenv" / "logs").iterdir())
    assert [p.name for p in logs] == [
        p.name for p in logs if re.fullmatch(rf"{VERSION}-{HOST}-\d{{8}}T\d{{6}}Z\.log", p.name)
    ]
    assert len(logs) == 1
    text = logs[0].read_text()
    for phase in ("lock", "interpreter", "downloads", "install", "byte-compile", "pack", "verify"):
        assert re.search(rf"\] {phase}: done in \d+\.\d\ds", text), (phase, text)
    assert re.search(r"\] ran: \S*uv\S* pip compile", text), text
    assert "finished after" in text
    assert secret not in text and "***" in text


def test_build_log_keeps_the_newest_twenty(package_workspace: Path, run_cli) -> None:
    logs = package_workspace / ".runenv" / "logs"
    logs.mkdir(parents=True)
    for n in range(25):
        old = logs / f"{VERSION}-{HOST}-2020010{n // 10}T0000{n % 10}0Z.log"
        old.write_text("old\n")
        os.utime(old, (1_600_000_000 + n, 1_600_000_000 + n))
    other = logs / f"{VERSION}-windows-x64-20200101T000000Z.log"
    other.write_text("another artifact's\n")
    assert run_cli("-w", package_workspace, "build", VERSION).code == 0
    own = sorted(p.name for p in logs.glob(f"{VERSION}-{HOST}-*.log"))
    assert len(own) == 20
    assert f"{VERSION}-{HOST}-20200100T000000Z.log" not in own  # the oldest went first
    assert other.exists()


def test_build_log_off_writes_nothing(package_workspace: Path, run_cli) -> None:
    shared = package_workspace / "shared-config.json"
    data = json.loads(shared.read_text())
    data.setdefault("build", {})["enableLogging"] = False
    write_json(shared, data)
    assert run_cli("-w", package_workspace, "build", VERSION).code == 0
    assert not (package_workspace / ".runenv" / "logs").exists()


@pytest.mark.parametrize(("seconds", "shown"), [(0.2071, "207ms"), (1.2, "1.20s"), (76.4, "1m16s")])
def test_durations_read_like_uv(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown
