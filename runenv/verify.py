"""The import checker and relocation smoke test over an unpacked runtime (ARCHITECTURE §7)."""

from __future__ import annotations

import configparser
import contextlib
import csv
import email.parser
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from packaging.utils import canonicalize_name
from pydantic import ValidationError

from runenv.config.load import read_json
from runenv.config.models import VerifyConfig
from runenv.errors import BuildError, ConfigError
from runenv.interpreter import isolated_env
from runenv.owner import temp_dir
from runenv.platforms import Platform
from runenv.scratch import scratch_dir
from runenv.unpack import extract_tarball, single_top_dir

Allowlist = dict[str, dict[str, str]]  # {distribution: {module or console script: error substring}}

IMPORT_TIMEOUT = 300
SCRIPT_TIMEOUT = 120
ERROR_LINES = 8
_IMPORT = "import importlib, sys; importlib.import_module(sys.argv[1])"
_PREFIX = "import sys; print(sys.prefix)"
_ANSWER = re.compile(r"(\S+) (-?[0-9]+|timeout)")
# The fork server, run as `python -I -c _SERVER OUT_DIR WORKERS TIMEOUT MODULE…` in the runtime: one
# interpreter start-up instead of one per module. Each child sends its stdout and stderr to
# OUT_DIR/MODULE.out|.err and returns from serve() to import its module at the top level, so a failure
# is reported and exits as with `python -I -c _IMPORT MODULE`. After a good import the child waits for
# the threads Python would wait for and leaves by os._exit: the interpreter's teardown costs more than
# most imports. gc.freeze() keeps the children's collections off the server's objects. One line per
# module on stdout: "MODULE EXIT_CODE" (negative: the signal that killed it) or "MODULE timeout".
_SERVER = """
import gc, os, sys, time

def serve(out, workers, timeout, modules):
    running = {}
    while modules or running:
        while modules and len(running) < workers:
            module = modules.pop(0)
            pid = os.fork()
            if pid == 0:
                for fd, suffix in ((1, ".out"), (2, ".err")):
                    file = os.open(os.path.join(out, module + suffix), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(file, fd)
                    os.close(file)
                return module
            running[pid] = module, time.monotonic() + timeout
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            result = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        else:
            pid = next((p for p, (_, deadline) in running.items() if deadline < time.monotonic()), 0)
            if not pid:
                time.sleep(0.005)
                continue
            os.kill(pid, 9)  # SIGKILL
            os.waitpid(pid, 0)
            result = "timeout"
        os.write(1, f"{running.pop(pid)[0]} {result}\\n".encode())

gc.freeze()
module = serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
if module:
    sys.argv[:] = ["-c", module]
    import importlib
    importlib.import_module(module)
    threading = sys.modules.get("threading")
    for thread in threading.enumerate() if threading else ():
        if not thread.daemon and thread is not threading.current_thread():
            thread.join()
    os._exit(0)
"""


@dataclass(frozen=True)
class Distribution:
    """One installed distribution: its top-level modules and the console script to try."""

    name: str  # PEP 503 normalised
    version: str
    modules: tuple[str, ...]
    console_script: str | None
    weight: int = 0  # size of its RECORD: a rough guide to how long its imports take (heavy ones start first)


@dataclass(frozen=True)
class Failure:
    """A module that did not import, or a console script that answered neither --version nor --help."""

    distribution: str
    module: str  # module name, or the console script's name when kind is "script"
    kind: Literal["import", "script"]
    error: str  # the last line of the error: the exception
    detail: str  # the last lines of stderr


@dataclass
class VerifyReport:
    """What the checker did and what failed; `ok` when every failure is allowed."""

    platform: str
    distributions: int = 0
    modules_checked: int = 0
    scripts_checked: int = 0
    relocated: bool = False
    allowed: list[Failure] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def summary(self) -> str:
        """One line: the first failure (module and distribution), or what was checked."""
        if self.failures:
            first = self.failures[0]
            what = "import of module" if first.kind == "import" else "console script"
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            return (
                f"{what} {first.module!r} of distribution {first.distribution!r} failed on "
                f"{self.platform}: {first.error}{more}"
            )
        return (
            f"{self.modules_checked} modules and {self.scripts_checked} console scripts of "
            f"{self.distributions} distributions ok on {self.platform}"
            + (f", {len(self.allowed)} allowed failures" if self.allowed else "")
        )


class VerifyError(BuildError):
    """The runtime failed verification; `report` holds every failure."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(
            report.summary(),
            hint="fix the package, or allow the failure in "
            f"checks/{report.platform}.json or verify.allow: {{distribution: {{module: error substring}}}}",
        )
        self.report = report


def _metadata(dist_info: Path) -> tuple[str, str]:
    text = (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    headers = email.parser.HeaderParser().parsestr(text)
    stem_name, _, stem_version = dist_info.name.removesuffix(".dist-info").partition("-")
    return canonicalize_name(headers.get("Name") or stem_name), headers.get("Version") or stem_version


def _module_of(path: str) -> str | None:
    """The top-level module a RECORD path belongs to, if it is one."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
        return None
    if len(parts) > 1:
        name = parts[0]
    elif parts[0].endswith(".py"):
        name = parts[0][:-3]
    elif parts[0].endswith((".so", ".pyd")):
        name = parts[0].split(".")[0]
    else:
        return None
    return name if name.isidentifier() and not name.startswith("__") else None


def _is_installed(site_packages: Path, module: str) -> bool:
    """A package directory or a module file (`.py`, extension) for the dotted name exists in site-packages."""
    path = site_packages.joinpath(*module.split("."))
    return path.is_dir() or any(path.parent.glob(f"{path.name}.*"))


def top_level_modules(dist_info: Path, site_packages: Path, name: str) -> tuple[str, ...]:
    """From top_level.txt (names that are installed), else RECORD, else a module named like the distribution."""
    top_level = dist_info / "top_level.txt"
    if top_level.is_file():
        # top_level.txt may name modules the wheel does not ship (pyarrow lists `__dummy__`).
        names = [line.strip().replace("/", ".") for line in top_level.read_text().splitlines()]
        return tuple(
            sorted(
                {
                    n
                    for n in names
                    if n and all(p.isidentifier() for p in n.split(".")) and _is_installed(site_packages, n)
                }
            )
        )
    record = dist_info / "RECORD"
    if record.is_file():
        with record.open(newline="", encoding="utf-8") as fh:
            found = {_module_of(row[0]) for row in csv.reader(fh) if row}
        return tuple(sorted(n for n in found if n))
    guess = name.replace("-", "_")
    exists = (site_packages / guess).is_dir() or (site_packages / f"{guess}.py").is_file()
    return (guess,) if exists else ()


def console_script(dist_info: Path) -> str | None:
    """The first (by name) console script a distribution declares."""
    entry_points = dist_info / "entry_points.txt"
    if not entry_points.is_file():
        return None
    parser = configparser.RawConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(entry_points.read_text(encoding="utf-8"))
    except configparser.Error:
        return None
    names = sorted(parser.options("console_scripts")) if parser.has_section("console_scripts") else []
    return names[0] if names else None


def find_distributions(site_packages: Path) -> list[Distribution]:
    """Every `*.dist-info` in site-packages, sorted by name."""
    found = []
    for dist_info in sorted(site_packages.glob("*.dist-info")):
        if not (dist_info / "METADATA").is_file():
            continue
        name, version = _metadata(dist_info)
        record = dist_info / "RECORD"
        found.append(
            Distribution(
                name,
                version,
                top_level_modules(dist_info, site_packages, name),
                console_script(dist_info),
                record.stat().st_size if record.is_file() else 0,
            )
        )
    return sorted(found, key=lambda d: d.name)


def _output(code: int, stdout: str, stderr: str) -> str:
    """What a finished process said: its stderr (else its stdout), and the signal that killed it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return (stderr + f"\nkilled by signal {name}").strip()
    return (stderr or stdout).strip()


def _run(cmd: list[str], cwd: Path, timeout: int) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=isolated_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout}s"
    except OSError as exc:
        return -1, f"cannot run {cmd[0]}: {exc.strerror or exc}"
    return proc.returncode, _output(proc.returncode, proc.stdout, proc.stderr)


def _failure(dist: str, module: str, kind: Literal["import", "script"], output: str) -> Failure:
    lines = [line for line in output.splitlines() if line.strip()] or ["failed without output"]
    return Failure(dist, module, kind, lines[-1].strip(), "\n".join(lines[-ERROR_LINES:]))


def _import(python: Path, prefix: Path, dist: str, module: str) -> Failure | None:
    code, output = _run([str(python), "-I", "-c", _IMPORT, module], prefix, IMPORT_TIMEOUT)
    return None if code == 0 else _failure(dist, module, "import", output)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _end_session(leader: int) -> None:
    with contextlib.suppress(OSError):  # gone already
        os.killpg(leader, signal.SIGKILL)


def _served_imports(python: Path, prefix: Path, owner: dict[str, str], workers: int) -> dict[str, Failure | None]:
    """Import results from the fork server (modules started in `owner`'s order), for the modules it answered;
    none when it cannot start."""
    modules = list(owner)
    rounds = -(-len(modules) // workers)
    with temp_dir("imports") as out:
        cmd = [str(python), "-I", "-c", _SERVER, str(out), str(workers), str(IMPORT_TIMEOUT), *modules]
        try:
            with subprocess.Popen(
                cmd,
                cwd=prefix,
                env=isolated_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            ) as server:
                try:
                    answers, _ = server.communicate(timeout=IMPORT_TIMEOUT * rounds + 60)
                except subprocess.TimeoutExpired:  # the server itself hangs
                    _end_session(server.pid)
                    answers, _ = server.communicate()
                # What is left: children of a server that died, or everything on Ctrl-C (not sent to its session).
                finally:
                    _end_session(server.pid)
        except OSError:
            return {}
        answered = (_ANSWER.fullmatch(line) for line in answers.splitlines())
        return {m[1]: _served_failure(out, owner[m[1]], m[1], m[2]) for m in answered if m and m[1] in owner}


def _served_failure(out: Path, dist: str, module: str, answer: str) -> Failure | None:
    if answer == "0":
        return None
    output = (
        f"timed out after {IMPORT_TIMEOUT}s"
        if answer == "timeout"
        else _output(int(answer), _read(out / f"{module}.out"), _read(out / f"{module}.err"))
    )
    return _failure(dist, module, "import", output)


def _script(script: Path, prefix: Path, dist: str) -> Failure | None:
    if not script.is_file():
        return _failure(dist, script.name, "script", f"console script {script} is missing")
    output = ""
    for flag in ("--version", "--help"):
        code, output = _run([str(script), flag], prefix, SCRIPT_TIMEOUT)
        if code == 0:
            return None
    return _failure(dist, script.name, "script", output)


def is_allowed(failure: Failure, allow: Allowlist) -> bool:
    """Whether the allowlist names this distribution and module with a substring of its error."""
    expected = allow.get(failure.distribution, {}).get(failure.module)
    return expected is not None and expected in failure.detail


def check_prefix(
    prefix: Path, platform: Platform, python_version: str, allow: Allowlist | None = None, workers: int | None = None
) -> VerifyReport:
    """Import every top-level module, each in its own process, and run one console script per
    distribution, in parallel."""
    started = time.monotonic()
    python = prefix / platform.python_exe(python_version)
    dists = find_distributions(prefix / platform.site_packages(python_version))
    owner: dict[str, str] = {}
    for dist in dists:
        for module in dist.modules:
            owner.setdefault(module, dist.name)
    weight = {d.name: d.weight for d in dists}
    # Heaviest distribution first, so the long imports do not start last and finish alone.
    owner = dict(sorted(owner.items(), key=lambda item: (-weight[item[1]], item[0])))
    exe = ".exe" if platform.is_windows else ""
    scripts = [(prefix / platform.scripts_dir / f"{d.console_script}{exe}", d.name) for d in dists if d.console_script]
    workers = workers or min(32, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        script_jobs = [pool.submit(_script, script, prefix, dist) for script, dist in scripts]
        # No fork on Windows; elsewhere, modules the server left unanswered get their own interpreter.
        served = _served_imports(python, prefix, owner, workers) if owner and not platform.is_windows else {}
        jobs = {
            module: pool.submit(_import, python, prefix, dist, module)
            for module, dist in sorted(owner.items())
            if module not in served
        }
        results = [served[module] if module in served else jobs[module].result() for module in sorted(owner)]
        results += [job.result() for job in script_jobs]
    report = VerifyReport(platform.key, len(dists), len(owner), len(scripts))
    for failure in filter(None, results):
        (report.allowed if is_allowed(failure, allow or {}) else report.failures).append(failure)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def smoke_test(prefix: Path, platform: Platform, python_version: str) -> None:
    """The interpreter starts from `prefix` and knows it lives there."""
    python = prefix / platform.python_exe(python_version)
    try:
        proc = subprocess.run(
            [str(python), "-I", "-c", _PREFIX],
            cwd=prefix,
            env=isolated_env(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SCRIPT_TIMEOUT,
        )
        where = proc.stdout.strip()
        problem = (
            f"reports prefix {where}, expected {prefix}"
            if proc.returncode == 0
            else f"exits {proc.returncode}: {_failure('', '', 'import', proc.stderr).error}"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        where, problem = "", f"does not start: {exc}"
    if os.path.realpath(where or "/nonexistent") != os.path.realpath(prefix):
        raise BuildError(f"relocation smoke test failed on {platform.key}: {python} {problem}")


def verify_tarball(
    tarball: Path, platform: Platform, python_version: str, allow: Allowlist | None, *, scratch: Path
) -> VerifyReport:
    """Unpack `tarball` into a new directory in `scratch`, move it to a second path, and check it there;
    raises VerifyError on failures."""
    with scratch_dir(scratch, "verify") as work:
        unpacked = work / "unpacked"
        unpacked.mkdir()
        extract_tarball(tarball, unpacked)
        top = single_top_dir(unpacked, tarball)
        relocated = work / "relocated" / top.name
        relocated.parent.mkdir()
        os.rename(top, relocated)
        shutil.rmtree(unpacked)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the smoke test beside the import checks
            smoke = pool.submit(smoke_test, relocated, platform, python_version)
            report = check_prefix(relocated, platform, python_version, allow)
            smoke.result()  # a runtime that does not know where it lives fails with that first
        report.relocated = True
    if not report.ok:
        raise VerifyError(report)
    return report


def load_allowlist(workspace_root: Path, platform: str, config_allow: Allowlist) -> Allowlist:
    """`checks/<platform>.json` merged with the config's `verify.allow` (the config wins per module)."""
    merged: Allowlist = {}
    path = workspace_root / "checks" / f"{platform}.json"
    if path.is_file():
        try:
            merged = {k: dict(v) for k, v in VerifyConfig.model_validate({"allow": read_json(path)}).allow.items()}
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "(top level)"
            raise ConfigError(
                f"{path}: {where}: {first['msg']}", hint='expected {"distribution": {"module": "error substring"}}'
            ) from None
    for dist, modules in config_allow.items():
        merged.setdefault(dist, {}).update(modules)
    return merged
