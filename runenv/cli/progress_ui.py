"""How progress looks: a live area on a terminal (rich), one line per phase elsewhere (CI logs)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from runenv.progress import DEBUG, Phase, Reporter, Task
from runenv.redact import redact


def duration(seconds: float) -> str:
    """`207ms`, `1.20s`, `1m16s`: as uv shows times."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{int(seconds // 60)}m{seconds % 60:02.0f}s"


def megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def amount(phase: Phase) -> str:
    """What a running phase has done: `3/14`, `12.1/31.2 MB at 8.2 MB/s`."""
    if phase.unit == "B":
        if not phase.done:
            return ""
        total = f"/{phase.total / 1e6:.1f}" if phase.total and phase.total > phase.done else ""
        return f"{phase.done / 1e6:.1f}{total} MB at {phase.rate / 1e6:.1f} MB/s"
    if phase.total:
        return f"{phase.done}/{phase.total}"
    return ""


def phase_line(phase: Phase) -> str:
    """A finished phase in one line: `3.12.10 linux-x64  downloads  14 files, 3 cached, 25.3 MB at 8.1 MB/s  3.10s`."""
    what = [phase.detail] if phase.detail else []
    if phase.unit == "B":
        what.append(amount(phase))
    elif phase.total and phase.name == "verify":
        what.append(f"{phase.done}/{phase.total} modules imported")
    label = phase.task.label if phase.task else ""
    done = ", ".join(w for w in what if w)
    return f"{label}  {phase.name:<12} {done + '  ' if done else ''}{duration(phase.seconds)}"


def stream_is_terminal(stream: IO[str]) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def progress_disabled() -> bool:
    """RUNENV_NO_PROGRESS set to anything but empty or 0."""
    return os.environ.get("RUNENV_NO_PROGRESS", "") not in ("", "0")


class LineReporter(Reporter):
    """One line per finished phase and per artifact; in GitHub Actions each artifact is a collapsible group."""

    def __init__(self, stream: IO[str], verbosity: int, github: bool = False) -> None:
        self.stream = stream
        self.verbosity = verbosity
        self.github = github
        self._guard = threading.Lock()
        self._open: Task | None = None  # the task whose group is open (its lines go straight out)
        self._held: dict[int, list[str]] = {}  # lines of the other running tasks, printed as a group when done
        self._finished: list[Task] = []  # tasks that ended while another's group was open

    def _write(self, task: Task | None, line: str) -> None:
        with self._guard:
            if self.github and task is not None and task is not self._open:
                self._held.setdefault(id(task), []).append(line)
                return
            self.stream.write(redact(line) + "\n")
            self.stream.flush()

    def task_started(self, task: Task) -> None:
        if self.github:
            with self._guard:
                if self._open is None:
                    self._open = task
                    self.stream.write(f"::group::{task.label}\n")
                    self.stream.flush()

    def phase_finished(self, phase: Phase) -> None:
        if phase.ok:
            self._write(phase.task, phase_line(phase))

    def message(self, task: Task | None, level: int, text: str) -> None:
        if level <= self.verbosity:
            self._write(task, f"{task.label}: {text}" if task else text)

    def task_finished(self, task: Task) -> None:
        if task.ok and task.summary:
            self._write(task, task.summary)
        if not self.github:
            return
        with self._guard:
            if task is self._open:
                self._open = None
                lines = ["::endgroup::"]
                for done in self._finished:  # groups that ended while this one was open, never nested in it
                    lines += [f"::group::{done.label}", *self._held.pop(id(done), []), "::endgroup::"]
                self._finished.clear()
            elif self._open is not None:
                self._finished.append(task)
                return
            else:
                lines = [f"::group::{task.label}", *self._held.pop(id(task), []), "::endgroup::"]
            self.stream.write("".join(redact(line) + "\n" for line in lines))
            self.stream.flush()


class LiveReporter(Reporter):
    """A live area on the terminal: one row per running artifact and its running phases, with bars; finished
    phases and artifacts scroll above it."""

    def __init__(self, console: Console, verbosity: int) -> None:
        self.console = console
        self.verbosity = verbosity
        self._guard = threading.Lock()
        self._tasks: dict[int, Task] = {}
        self._phases: dict[int, list[Phase]] = {}
        self._spinners: dict[int, Spinner] = {}
        self.live = Live(
            console=console, get_renderable=self._render, refresh_per_second=10, transient=True, redirect_stdout=False
        )

    def _render(self) -> RenderableType:
        rows: list[RenderableType] = []
        with self._guard:
            tasks = list(self._tasks.values())
            phases = {k: list(v) for k, v in self._phases.items()}
        for task in tasks:
            head = Table.grid(padding=(0, 1))
            head.add_row(self._spinners[id(task)], Text(task.label, style="bold"), Text(duration(task.seconds)))
            rows.append(head)
            grid = Table.grid(padding=(0, 1))
            for phase in phases.get(id(task), []):
                known = phase.total is not None and phase.total > 0
                bar = ProgressBar(total=phase.total if known else None, completed=phase.done, width=30, pulse=not known)
                grid.add_row(Text(f"    {phase.name:<12}"), bar, Text(amount(phase)))
            rows.append(grid)
        return Group(*rows)

    def task_started(self, task: Task) -> None:
        with self._guard:
            self._tasks[id(task)] = task
            self._phases[id(task)] = []
            self._spinners[id(task)] = Spinner("dots", style="cyan")

    def phase_started(self, phase: Phase) -> None:
        if phase.task is not None:
            with self._guard:
                self._phases.setdefault(id(phase.task), []).append(phase)

    def phase_finished(self, phase: Phase) -> None:
        if phase.task is None:
            return
        with self._guard:
            running = self._phases.get(id(phase.task), [])
            if phase in running:
                running.remove(phase)
        if phase.ok:
            self.console.print(Text("  ") + Text(phase_line(phase), style="dim"), highlight=False, soft_wrap=True)

    def message(self, task: Task | None, level: int, text: str) -> None:
        if level <= self.verbosity:
            style = "dim" if level >= DEBUG else ""
            self.console.print(
                Text(redact(f"{task.label}: {text}" if task else text), style=style), highlight=False, soft_wrap=True
            )

    def task_finished(self, task: Task) -> None:
        with self._guard:
            self._tasks.pop(id(task), None)
            self._phases.pop(id(task), None)
            self._spinners.pop(id(task), None)
        if task.ok and task.summary:
            self.console.print(Text("✓ ", style="green") + Text(redact(task.summary)), highlight=False, soft_wrap=True)
        elif not task.ok:
            self.console.print(
                Text("✗ ", style="red") + Text(f"{task.label} failed after {duration(task.seconds)}"),
                highlight=False,
                soft_wrap=True,
            )


@contextlib.contextmanager
def reporter(verbosity: int, no_progress: bool = False) -> Iterator[Reporter]:
    """The reporter for this run: nothing with -q, a live area on a terminal, else one line per phase."""
    if verbosity < 0:
        yield Reporter()
        return
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    if no_progress or progress_disabled() or not stream_is_terminal(sys.stderr) or github:
        yield LineReporter(sys.stderr, verbosity, github=github)
        return
    live = LiveReporter(Console(stderr=True, highlight=False, soft_wrap=True), verbosity)
    with live.live:
        yield live
