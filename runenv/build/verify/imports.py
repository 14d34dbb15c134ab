"""Running the runtime's own interpreter: every top-level and native extension module imported in its own process
(forked from one interpreter start), one console script per distribution, and the relocation smoke test."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from runenv import progress
from runenv.build.verify.discovery import Distribution
from runenv.build.verify.launcher import Launcher
from runenv.build.verify.proven import ProvenImports
from runenv.build.verify.report import Check, Failure, Kind
from runenv.errors import BuildError
from runenv.owner import temp_dir
from runenv.platforms import RuntimeLayout
from runenv.proc import NotRun, isolated_env, run_captured

IMPORT_TIMEOUT = 300
SCRIPT_TIMEOUT = 120
ERROR_LINES = 8
_IMPORT = "import importlib, sys; importlib.import_module(sys.argv[1])"
_PREFIX = "import sys; print(sys.prefix)"
_ANSWER = re.compile(r"(\S+) (-?[0-9]+|timeout)")
# BLAS, OpenMP and jemalloc start threads when loaded; one thread each keeps the fork server forking from
# imported packages (see forkserver.py) and changes nothing about whether an import works.
_ONE_THREAD = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",  # pyarrow's jemalloc
}


def server_code() -> str:
    """The fork server's source (runenv/build/verify/forkserver.py), run with `-c` by the runtime's interpreter."""
    return resources.files("runenv.build.verify").joinpath("forkserver.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ImportPlan:
    """What to import: each module's distribution and file, heaviest distributions first."""

    owner: dict[str, str]  # module: distribution, in start order
    files: dict[str, str]  # extension module: its file

    @classmethod
    def of(cls, dists: list[Distribution]) -> ImportPlan:
        owner: dict[str, str] = {}
        files: dict[str, str] = {}
        for dist in dists:
            for module in dist.modules:
                owner.setdefault(module, dist.name)
            for module, file in dist.extensions.items():
                owner.setdefault(module, dist.name)
                files.setdefault(module, file)
        weight = {d.name: d.weight for d in dists}
        return cls(dict(sorted(owner.items(), key=lambda item: (-weight[item[1]], item[0]))), files)

    def tree(self) -> list[str]:
        """The fork server's plan: "DEPTH MODULE" lines in preorder, every package on the way to a module a node."""
        children: dict[str, dict[str, None]] = {"": {}}
        for module in self.owner:
            parent = ""
            parts = module.split(".")
            for depth in range(len(parts)):
                node = ".".join(parts[: depth + 1])
                children.setdefault(parent, {})[node] = None
                children.setdefault(node, {})
                parent = node
        lines: list[str] = []

        def walk(node: str, depth: int) -> None:
            for child in children[node] if depth == 0 else sorted(children[node]):
                lines.append(f"{depth} {child}")
                walk(child, depth + 1)

        walk("", 0)
        return lines


def _output(code: int, stdout: str, stderr: str) -> str:
    """What a finished process said: its stderr (else its stdout), and the signal that killed it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return (stderr + f"\nkilled by signal {name}").strip()
    return (stderr or stdout).strip()


def _run(cmd: list[str], cwd: Path, timeout: int, env: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        proc = run_captured(cmd, cwd=cwd, env=env or isolated_env(), timeout=timeout, log=False)
    except NotRun as exc:
        return -1, str(exc) if exc.timed_out else f"cannot run {cmd[0]}: {exc}"
    return proc.returncode, _output(proc.returncode, proc.stdout, proc.stderr)


def make_failure(
    dist: str, module: str, kind: Kind, output: str, file: str | None = None, check: Check = "imports"
) -> Failure:
    lines = [line for line in output.splitlines() if line.strip()] or ["failed without output"]
    return Failure(dist, module, kind, lines[-1].strip(), "\n".join(lines[-ERROR_LINES:]), file, check)


def _import_env() -> dict[str, str]:
    return {**isolated_env(), **_ONE_THREAD}


def _import(launcher: Launcher, python: Path, prefix: Path, dist: str, module: str) -> tuple[int, str]:
    return _run(launcher.python(python, "-I", "-c", _IMPORT, module), prefix, IMPORT_TIMEOUT, _import_env())


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _end_session(leader: int) -> None:
    with contextlib.suppress(OSError):  # gone already
        os.killpg(leader, signal.SIGKILL)


@dataclass(frozen=True)
class Served:
    """What the fork server answered: each module's output ("" when it imported), and for each module that
    imported, the top-level modules its import loaded."""

    outputs: dict[str, str]
    loaded: dict[str, frozenset[str]]


def served_imports(launcher: Launcher, layout: RuntimeLayout, plan: ImportPlan, workers: int) -> Served:
    """The fork server's answers for the modules it answered; none when it cannot start."""
    rounds = -(-len(plan.owner) // workers)
    with temp_dir("imports") as out:
        Path(out, "plan").write_text("\n".join(plan.tree()) + "\n", encoding="utf-8")
        args = (str(out), str(workers), str(IMPORT_TIMEOUT), str(layout.site_packages))
        cmd = launcher.python(layout.python, "-I", "-c", server_code(), *args)
        try:
            with subprocess.Popen(
                cmd,
                cwd=layout.prefix,
                env=_import_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            ) as server:
                lines: list[str] = []
                reader = threading.Thread(target=_read_answers, args=(server, plan, lines, progress.current_phase()))
                reader.start()  # answers are counted as they come, for the verify phase's bar
                try:
                    server.wait(timeout=IMPORT_TIMEOUT * (rounds + 1) + 60)
                except subprocess.TimeoutExpired:  # the server itself hangs
                    _end_session(server.pid)
                finally:  # what is left: children of a dead server, or everything on Ctrl-C (not sent to its session)
                    _end_session(server.pid)
                    reader.join()
        except OSError:
            return Served({}, {})
        answered = [m for m in (_ANSWER.fullmatch(line) for line in lines) if m and m[1] in plan.owner]
        outputs = {m[1]: _served_output(out, m[1], m[2]) for m in answered}
        # A module that exited 0 without finishing its import (sys.exit at import time) leaves no .ok.
        ok = {m[1]: out / f"{m[1]}.ok" for m in answered if m[2] == "0"}
        loaded = {module: frozenset(_read(path).splitlines()) for module, path in ok.items() if path.is_file()}
        return Served(outputs, loaded)


def _read_answers(server: subprocess.Popen[str], plan: ImportPlan, lines: list[str], meter: progress.Phase) -> None:
    """Collect the fork server's answer lines until it closes its stdout, counting each planned module."""
    for line in server.stdout or ():
        lines.append(line.rstrip("\n"))
        answer = _ANSWER.fullmatch(lines[-1])
        if answer and answer[1] in plan.owner:
            meter.advance()


def _served_output(out: Path, module: str, answer: str) -> str:
    if answer == "0":
        return ""
    if answer == "timeout":
        return f"timed out after {IMPORT_TIMEOUT}s"
    return _output(int(answer), _read(out / f"{module}.out"), _read(out / f"{module}.err")) or "failed without output"


def _script(launcher: Launcher, python: Path, script: Path, prefix: Path, dist: str, check: Check) -> Failure | None:
    if not script.is_file():
        return make_failure(dist, script.name, "script", f"console script {script} is missing", check=check)
    output = ""
    for flag in ("--version", "--help"):
        code, output = _run(launcher.script(python, script, flag), prefix, SCRIPT_TIMEOUT)
        if code == 0:
            return None
    return make_failure(dist, script.name, "script", output, check=check)


def run_imports(
    launcher: Launcher,
    layout: RuntimeLayout,
    dists: list[Distribution],
    check: Check,
    workers: int | None = None,
    kept: ProvenImports | None = None,
) -> tuple[list[Failure], dict[str, int]]:
    """Import every top-level and extension module, each in its own process, and run one console script per
    distribution, in parallel; returns the failures and what was counted. With `kept`, the distributions it
    proved before are not imported again, and those whose every module imported now are kept."""
    prefix, platform, python = layout.prefix, layout.platform, layout.python
    proven = kept.proven(d.name for d in dists) if kept is not None else set()
    every = ImportPlan.of(dists)
    plan = ImportPlan.of([d for d in dists if d.name not in proven])
    scripts = [(layout.script(d.console_script), d.name) for d in dists if d.console_script]
    workers = workers or min(32, (os.cpu_count() or 2) * 2)
    meter = progress.current_phase()  # modules imported, for the verify phase that runs this
    meter.expect(len(plan.owner))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        script_jobs = [pool.submit(_script, launcher, python, s, prefix, dist, check) for s, dist in scripts]
        # No fork on Windows; elsewhere, modules the server left unanswered get their own interpreter.
        served = (
            served_imports(launcher, layout, plan, workers)
            if plan.owner and not platform.is_windows
            else Served({}, {})
        )
        jobs = {
            module: pool.submit(_import, launcher, python, prefix, dist, module)
            for module, dist in plan.owner.items()
            if module not in served.outputs
        }
        for job in jobs.values():
            job.add_done_callback(lambda _job: meter.advance())
        outputs = {m: served.outputs[m] if m in served.outputs else _fresh(jobs[m].result()) for m in plan.owner}
        failures = [
            make_failure(plan.owner[m], m, "import", output, plan.files.get(m), check)
            for m, output in sorted(outputs.items())
            if output
        ]
        failures += [f for f in (job.result() for job in script_jobs) if f]
    if kept is not None:
        _keep(kept, [d for d in dists if d.name not in proven], served)
    counts = {"modules": len(every.owner), "extensionModules": len(every.files), "scripts": len(scripts)}
    if proven:
        counts["reusedModules"] = sum(dist in proven for dist in every.owner.values())
    return failures, counts


def _keep(kept: ProvenImports, dists: list[Distribution], served: Served) -> None:
    """Keep each distribution whose every own module (also one listed by another distribution too) imported in
    the fork server this time, which says what each import used."""
    for dist in dists:
        modules = [*dist.modules, *dist.extensions]
        if modules and all(m in served.loaded and served.outputs.get(m) == "" for m in modules):
            kept.remember(dist.name, set().union(*(served.loaded[m] for m in modules)))


def _fresh(result: tuple[int, str]) -> str:
    code, output = result
    return "" if code == 0 else output or "failed without output"


def smoke_test(launcher: Launcher, layout: RuntimeLayout) -> None:
    """The interpreter starts from the layout's prefix and knows it lives there."""
    prefix, platform, python = layout.prefix, layout.platform, layout.python
    try:
        proc = run_captured(
            launcher.python(python, "-I", "-c", _PREFIX),
            cwd=prefix,
            env=isolated_env(),
            timeout=SCRIPT_TIMEOUT,
            log=False,
        )
        where = proc.stdout.strip()
        problem = (
            f"reports prefix {where}, expected {prefix}"
            if proc.returncode == 0
            else f"exits {proc.returncode}: {make_failure('', '', 'import', proc.stderr).error}"
        )
    except NotRun as exc:
        where, problem = "", f"does not start: {exc}"
    if os.path.realpath(where or "/nonexistent") != os.path.realpath(prefix):
        emulated = f" ({launcher.emulator})" if launcher.emulator else ""
        raise BuildError(f"relocation smoke test failed on {platform.key}{emulated}: {python} {problem}")
