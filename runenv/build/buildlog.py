"""`build.enableLogging`: each build writes `.runenv/logs/<runtime>-<platform>-<UTC stamp>.log` (phases with
their times, commands run and their output), with secrets redacted; the newest LOGS_KEPT per artifact stay."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from runenv import progress
from runenv.config.load import LoadedConfig
from runenv.redact import redact
from runenv.workspace import Workspace

LOGS_KEPT = 20


class BuildLog(progress.Reporter):
    """Writes every event of one task to a file as it happens (a build killed halfway leaves its log)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out: IO[str] | None = None
        self._started = time.monotonic()
        self._guard = threading.Lock()

    def _line(self, text: str) -> None:
        with self._guard:
            if self._out is None:
                return
            stamp = f"[{time.monotonic() - self._started:8.2f}s] "
            body = redact(text).replace("\n", "\n" + " " * len(stamp))
            self._out.write(stamp + body + "\n")
            self._out.flush()

    def task_started(self, task: progress.Task) -> None:
        try:
            self._out = self.path.open("x", encoding="utf-8")
        except OSError:
            self._out = None  # a log that cannot be written never fails the build
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._line(f"runenv build {task.label}, started {now}")

    def phase_started(self, phase: progress.Phase) -> None:
        self._line(f"{phase.name}: started")

    def phase_finished(self, phase: progress.Phase) -> None:
        state = "done" if phase.ok else "failed"
        counted = f", {phase.done} {'bytes' if phase.unit == 'B' else 'of ' + str(phase.total)}" if phase.done else ""
        detail = f": {phase.detail}" if phase.detail else ""
        self._line(f"{phase.name}: {state} in {phase.seconds:.2f}s{counted}{detail}")

    def message(self, task: progress.Task | None, level: int, text: str) -> None:
        self._line(text)

    def task_finished(self, task: progress.Task) -> None:
        reused = f" (reused: {', '.join(task.reused)})" if task.reused else ""
        self._line(f"{'finished' if task.ok else 'failed'} after {task.seconds:.2f}s{reused}")
        with self._guard:
            if self._out is not None:
                self._out.close()
                self._out = None


def log_path(logs: Path, runtime: str, platform: str) -> Path:
    """A new log's path: the UTC time to the second, with a counter when that name is taken."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = logs / f"{runtime}-{platform}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = logs / f"{runtime}-{platform}-{stamp}-{n}.log"
    return path


def prune(logs: Path, runtime: str, platform: str, keep: int = LOGS_KEPT) -> None:
    """Remove all but the newest `keep` logs of one artifact."""
    own = sorted(logs.glob(f"{runtime}-{platform}-*.log"), key=lambda p: p.stat().st_mtime_ns)
    for old in own[: max(0, len(own) - keep)]:
        old.unlink(missing_ok=True)


@contextlib.contextmanager
def build_log(ws: Workspace, loaded: LoadedConfig, platform: str) -> Iterator[Path | None]:
    """Record the build of (runtime, platform) in a new log when `build.enableLogging` is on."""
    if not loaded.config.build.enable_logging:
        yield None
        return
    runtime = loaded.runtime.name
    logs = ws.state_dir / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        prune(logs, runtime, platform, LOGS_KEPT - 1)
    except OSError:
        yield None
        return
    path = log_path(logs, runtime, platform)
    with progress.listening(BuildLog(path), f"{runtime} {platform}"):
        yield path
