"""Byte-compiling site-packages to reproducible checked-hash .pyc, while the wheels are still being installed.

Compiling is the largest CPU cost of a build, so it runs beside the installer: each installed wheel's
files, in sorted order and BATCH_FILES at a time, go to a fresh worker process (started without
`site`: no distutils shim or other start-up cost), up to one per CPU at once. Fresh processes over a
fixed split are what make the bytes reproducible: marshal marks objects by their reference counts,
which depend on what the process compiled before, so a worker pool fed from a queue (as in
`compileall -j`) would make the .pyc depend on scheduling. The .pyc record source paths relative to
the prefix's parent (`<stem>/lib/…`), not the staging directory, so the tarball is the same bytes
wherever it is built. Packages' own `test/` and `tests/` directories are left uncompiled: half the
files, imported only by test runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Literal

from runenv.errors import BuildError
from runenv.platforms import RuntimeLayout, is_host_runnable, major_minor
from runenv.proc import NotRun, isolated_env, output_tail, run_captured

# Files per worker process. A fixed number, so which files share a process (and so the bytes) does not
# depend on the CPU count; small enough that a large wheel (scipy: 546 files) spreads over every CPU
# instead of finishing last on one, large enough that start-up (~15 ms) stays negligible.
BATCH_FILES = 100


def worker_code() -> str:
    """The compile worker's source (compile_worker.py beside this module), run with `-c` by the compiling
    interpreter."""
    return resources.files("runenv.build.packages").joinpath("compile_worker.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Compiler:
    """The interpreter that byte-compiles, and the CPython version whose bytecode it writes."""

    python: Path
    version: str


def compiler_for(layout: RuntimeLayout) -> Compiler | None:
    """The runtime's own interpreter in the prefix when the host can run it, else the host's Python if it is the
    same minor version, else None (nothing is compiled)."""
    if is_host_runnable(layout.platform.key) and layout.python.exists():
        return Compiler(layout.python, layout.version)
    if sys.version_info[:2] == major_minor(layout.version):
        return Compiler(Path(sys.executable), ".".join(map(str, sys.version_info[:3])))
    return None


def cache_tag(python_version: str) -> str:
    """CPython's `__pycache__` tag for a version (`cpython-312`)."""
    major, minor = major_minor(python_version)
    return f"cpython-{major}{minor}"


def pyc_path(source: Path, python_version: str) -> Path:
    """Where the compiler writes the .pyc of `source` (as `importlib.util.cache_from_source` names it)."""
    base, dot, rest = source.name.rpartition(".")
    return source.parent / "__pycache__" / f"{base or rest}{dot}{cache_tag(python_version)}.pyc"


class ByteCompiler:
    """Compiles batches of site-packages files in the background; `finish` compiles the rest and waits.

    The compiler is the runtime's own interpreter when the host can run it, else the host's Python if
    it is the same minor version, else there is none and nothing is compiled. Use it as a context
    manager: leaving the block early drops the batches not yet started.
    """

    def __init__(
        self,
        layout: RuntimeLayout,
        workers: int | None = None,
        batch_files: int = BATCH_FILES,
        *,
        compiler: Compiler | None | Literal["auto"] = "auto",
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.site = layout.site_packages
        self.strip = layout.prefix.parent
        self.skip = re.compile(re.escape(str(self.site)) + r"[/\\](?:[^/\\]+[/\\])*tests?[/\\]")
        chosen = compiler_for(layout) if compiler == "auto" else compiler
        self.python: Path | None = chosen.python if chosen is not None else None
        self.batch_files = batch_files
        self._own_pool = pool is None
        self._pool = pool or ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
        self._jobs: list[Future[list[str]]] = []
        self._submitted: set[Path] = set()
        self._excluded: set[Path] = set()

    def __enter__(self) -> ByteCompiler:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._own_pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:  # a shared pool: only this compiler's batches not yet started are dropped
            for job in self._jobs:
                job.cancel()
            for job in self._jobs:
                if not job.cancelled():
                    job.exception()

    def exclude(self, paths: Iterable[Path]) -> None:
        """Never compile these files (their .pyc come from elsewhere, e.g. an installed-tree cache entry)."""
        added = set(paths) - self._submitted
        self._excluded |= added
        self._submitted |= added

    @property
    def submitted(self) -> list[Path]:
        """The files compiled or being compiled, sorted."""
        return sorted(self._submitted - self._excluded)

    def submit(self, paths: Iterable[Path]) -> None:
        """Compile these files (one wheel's) in fresh workers, `batch_files` at a time; non-`.py` files and
        tests are skipped."""
        if self.python is None:
            return
        batch = sorted(
            p
            for p in paths
            if p.suffix == ".py"
            and p.is_relative_to(self.site)
            and p not in self._submitted
            and not self.skip.search(str(p))
        )
        self._submitted.update(batch)
        for start in range(0, len(batch), self.batch_files):
            self._jobs.append(self._pool.submit(self._compile, self.python, batch[start : start + self.batch_files]))

    def wait(self) -> None:
        """Wait for the batches submitted so far (before anything overwrites their sources)."""
        for job in self._jobs:
            job.exception()

    def finish(self, rewritten: Iterable[Path] = ()) -> bool:
        """Compile what is left in site-packages, and again the `rewritten` files and directories (written over
        files already compiled: call `wait` before writing them); then wait for every batch. False when nothing
        can compile here."""
        if self.python is None:
            return False
        for path in rewritten:
            files = [Path(r, n) for r, _d, names in os.walk(path) for n in names] if path.is_dir() else [path]
            self._submitted.difference_update(files)
            self._excluded.difference_update(files)
            self.submit(files)
        self.submit(Path(root, name) for root, _dirs, files in os.walk(self.site) for name in files)
        errors = [error for job in self._jobs for error in job.result()]
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise BuildError(f"byte-compiling {self.site} failed: {errors[0]}{more}")
        return True

    def _compile(self, python: Path, batch: list[Path]) -> list[str]:
        items = [[str(path), path.relative_to(self.strip).as_posix()] for path in batch]
        try:
            proc = run_captured(
                [str(python), "-s", "-S", "-B", "-c", worker_code()],
                input=json.dumps(items),
                env=isolated_env(),
                log=False,
            )
        except NotRun as exc:
            return [f"cannot run {python}: {exc}"]
        if proc.returncode != 0:
            last = output_tail(proc.stderr, lines=1) or "no output"
            return [f"{python} exited {proc.returncode} compiling {batch[0].name} and others: {last}"]
        return list(json.loads(proc.stdout))
