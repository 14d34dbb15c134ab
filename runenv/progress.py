"""Progress of long steps: library code marks phases and messages; a front end (the CLI) shows them.

Nothing here prints. Each artifact being built is a `Task` held in a context variable, so work running in
worker threads (started with `carry`) reports to the artifact it belongs to; without a task every call is
a cheap no-op, which is what library callers and tests get.
"""

from __future__ import annotations

import contextlib
import contextvars
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

VERBOSE = 1  # -v: commands run, cache hits
DEBUG = 2  # -vv


class Reporter:
    """What a front end implements; every event has a do-nothing default. Events come from any thread."""

    def task_started(self, task: Task) -> None:
        pass

    def phase_started(self, phase: Phase) -> None:
        pass

    def phase_advanced(self, phase: Phase) -> None:
        pass

    def phase_finished(self, phase: Phase) -> None:
        pass

    def task_finished(self, task: Task) -> None:
        pass

    def message(self, task: Task | None, level: int, text: str) -> None:
        pass


@dataclass
class Task:
    """One unit of work a user waits for (an artifact: `3.12.10 linux-x64`), and who hears of it."""

    label: str
    listeners: list[Reporter]
    started: float = field(default_factory=time.monotonic)
    summary: str = ""  # what it produced, set before it finishes
    reused: list[str] = field(default_factory=list)  # what came from caches ("lock", "interpreter archive")
    ok: bool = False

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def emit(self, event: Callable[[Reporter], None]) -> None:
        for listener in list(self.listeners):
            event(listener)


@dataclass
class Phase:
    """One timed step of a task, with an optional count (`unit` "") or byte size (`unit` "B") done so far."""

    task: Task | None
    name: str
    total: int | None = None
    unit: str = ""
    done: int = 0
    detail: str = ""  # what it did, shown when it ends ("14 packages", "3 cached")
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    ok: bool = False
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def advance(self, amount: int = 1) -> None:
        with self._guard:
            self.done += amount
        if self.task is not None:
            self.task.emit(lambda r: r.phase_advanced(self))

    def expect(self, amount: int) -> None:
        """Grow the total (sizes learnt as downloads start)."""
        with self._guard:
            self.total = (self.total or 0) + amount
        if self.task is not None:
            self.task.emit(lambda r: r.phase_advanced(self))

    @property
    def rate(self) -> float:
        """Units per second since the phase started."""
        elapsed = (self.seconds if self.seconds else time.monotonic() - self.started) or 1e-9
        return self.done / elapsed


_task: contextvars.ContextVar[Task | None] = contextvars.ContextVar("runenv_task", default=None)
_phase: contextvars.ContextVar[Phase | None] = contextvars.ContextVar("runenv_phase", default=None)


@contextlib.contextmanager
def task(label: str, *listeners: Reporter) -> Iterator[Task]:
    """Run a block as task `label`; its phases and messages go to `listeners` (a failed task is `ok=False`)."""
    current = Task(label, list(listeners))
    token = _task.set(current)
    current.emit(lambda r: r.task_started(current))
    try:
        yield current
        current.ok = True
    except BaseException:
        current.ok = False
        raise
    finally:
        _task.reset(token)
        current.emit(lambda r: r.task_finished(current))


@contextlib.contextmanager
def listening(listener: Reporter, label: str) -> Iterator[None]:
    """Add `listener` to the running task for the block (a build log), or run the block as task `label`."""
    current = _task.get()
    if current is None:
        with task(label, listener):
            yield
        return
    current.listeners.append(listener)
    listener.task_started(current)
    try:
        yield
        current.ok = True  # the listener's part is done; the task's own end may still fail it
    finally:
        listener.task_finished(current)
        current.listeners.remove(listener)


@contextlib.contextmanager
def phase(name: str, total: int | None = None, unit: str = "") -> Iterator[Phase]:
    """Time a block as phase `name` of the running task; `phase.detail` set inside says what it did."""
    current = Phase(_task.get(), name, total, unit)
    token = _phase.set(current)
    if current.task is not None:
        current.task.emit(lambda r: r.phase_started(current))
    try:
        yield current
        current.ok = True
    finally:
        current.seconds = time.monotonic() - current.started
        _phase.reset(token)
        if current.task is not None:
            current.task.emit(lambda r: r.phase_finished(current))


def reused(what: str) -> None:
    """Note that the running task took `what` from a cache, for its summary."""
    current = _task.get()
    if current is not None:
        current.reused.append(what)


def current_phase() -> Phase:
    """The innermost running phase of this context, or a detached one nobody hears of."""
    return _phase.get() or Phase(None, "")


def log(text: str, level: int = VERBOSE) -> None:
    """A message for `-v` (commands run, cache hits) or `-vv` (debug), and for the build log."""
    current = _task.get()
    if current is not None:
        current.emit(lambda r: r.message(current, level, text))


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` bound to a copy of the current context: a worker thread running it reports to this task and phase.

    Each call of the result needs its own copy, so bind once per submitted job.
    """
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.run(fn, *args, **kwargs)

    return run


def ran(args: Sequence[str] | str, code: int, output: str = "") -> None:
    """A command that ran: its line for `-v`, its exit code and output for `-vv` and the build log."""
    line = args if isinstance(args, str) else shlex.join(args)
    log(f"ran: {line}", VERBOSE)
    if output.strip() or code:
        log(f"exit {code}\n{output.rstrip()}".rstrip(), DEBUG)
