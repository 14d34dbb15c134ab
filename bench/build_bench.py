"""`runenv build` of a data-science runtime, cold, warm, rebuilt and with one package changed, against the seed
system's way, uv + an ISA-L pack and `tar czf` of the same tree, in one run (issue 11's table).

Rows, in the order they run:
- cold: empty `RUNENV_CACHE_DIR` and `UV_CACHE_DIR`, no lock (lock, download, install, compile, pack, verify);
- cold --no-verify: the same with caches of its own, verification off (like for like with uv + pack and the
  seed way, which verify nothing);
- warm: the same inputs with the lock, copied into a NEW workspace directory, caches hot;
- rebuild: warm with `--rebuild` (the artifact cache is bypassed; installed trees and downloads are hot);
- change: biopython pinned to another release in the warm workspace, caches hot (re-lock, one new wheel);
- seed way: a copy of the interpreter prefix, one `pip download --only-binary :all:` per dependency,
  `pip install --no-index --find-links`, `tar czf`;
- uv + pack: a fresh copy of the interpreter tree runenv unpacks (the PBS-style archive's), `uv pip install
  --compile-bytecode` of the same set (empty uv cache), then that tree packed with runenv's packer (ISA-L gzip
  at runenv's level and threads);
- tar czf: `tar czf` of the runtime runenv built (unpacked untimed from the cold tarball);
- run: `runenv run VERSION -- python -c pass` twice after the builds, the first start (unpack) and the next.
Each runenv build runs in its own process (bench/peak_rss.py records its peak RSS); its phase times come from
the build's own log (`.runenv/logs/`). Everything uses the machine's default index; the interpreter is a pyenv
CPython served as a python-build-standalone archive from a loopback mirror.

Usage: python3 bench/build_bench.py [--python PREFIX] [--json] [--keep] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runenv.build.interpreter.pbs import SUMS_NAME, archive_name  # noqa: E402
from runenv.build.interpreter.version import interpreter_version  # noqa: E402
from runenv.build.pack import write_tar  # noqa: E402
from runenv.cache import HashingWriter  # noqa: E402
from runenv.platforms import get_platform  # noqa: E402
from tests.helpers.http import StaticServer  # noqa: E402
from tests.helpers.pbs import FLAVOR, make_tar_gz, stage_host_prefix  # noqa: E402

# Pinned to releases with CPython 3.12 manylinux x86_64 wheels, so every way installs the same versions.
PACKAGES = [
    "polars-lts-cpu==1.30.0",
    "numpy==2.2.6",
    "scipy==1.15.3",
    "pyarrow==20.0.0",
    "biopython==1.85",
    "pandas==2.2.3",
    "scikit-learn==1.6.1",
]
# What runenv's lock adds on its own (the distutils shim's), so that uv installs the same 16 distributions; and
# the platform that makes uv pick the same wheel files as runenv's lock (the manylinux2014 ones, where a
# release also has manylinux_2_28 wheels).
RUNENV_ADDS = ["setuptools", "wheel"]
UV_PLATFORM = "x86_64-manylinux_2_17"
CHANGED = ("biopython==1.85", "biopython==1.86")  # the one-package change
IMPORTS = "import polars, numpy, scipy, pyarrow, Bio, pandas, sklearn"
PLATFORM = "linux-x64"
RELEASE = "20240107"  # the PBS release that shipped 3.12.1; it sets the tarball mtimes
PEAK_RSS = Path(__file__).resolve().parent / "peak_rss.py"
# Build log lines: "[   3.21s] install: started", "[   9.70s] install: done in 6.49s, 16 of 16: 16 packages".
LOG_LINE = re.compile(r"^\[\s*(?P<at>[\d.]+)s\] (?P<phase>[\w -]+): (?P<what>started|done in (?P<secs>[\d.]+)s)")
LOG_END = re.compile(r"^\[\s*(?P<at>[\d.]+)s\] finished after (?P<secs>[\d.]+)s(?: \(reused: (?P<reused>.*)\))?")
# Issue 11's targets: (ratio name, bound, what it compares).
TARGETS = (
    ("warm / tar czf", 0.05, "warm rebuild in a new directory"),
    ("change / cold", 0.35, "one package changed"),
    ("cold / seed", 0.15, "cold against the seed way"),
    ("cold / uv+pack", 1.0, "cold against uv + ISA-L pack"),
)
RSS_TARGET_MB = 200


@dataclass
class Phase:
    """One phase of a runenv build, from its log: when it started (seconds into the build) and how long it took."""

    name: str
    start: float
    seconds: float


@dataclass
class Row:
    """One way of building: its wall time, named steps (other ways) or logged phases (runenv), what it made."""

    name: str
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    tarball_bytes: int = 0
    sha256: str | None = None
    reused: str | None = None  # what runenv's log says it took from caches
    task_seconds: float | None = None  # the build as runenv's log times it (the rest is process start-up)
    peak_rss_mib: float | None = None  # the runenv process itself
    peak_child_rss_mib: float | None = None  # the largest process it waited for
    cpu_seconds: float | None = None  # user + system of the runenv process
    child_cpu_seconds: float | None = None  # user + system of every process it waited for (uv, compile, verify)


def default_prefix() -> Path | None:
    found = sorted((Path.home() / ".pyenv" / "versions").glob("3.12.*"))
    return found[-1] if found else None


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


def sha256sum(path: Path) -> str:
    return run(["sha256sum", str(path)]).stdout.split()[0]


def stage_mirror(root: Path, staged: Path, base: Path, version: str) -> Path:
    """A PBS-style release directory (`<release>/<archive>` + SHA256SUMS) made from the prefix `base`, staged at
    `staged` first (kept: uv + pack starts from the same tree), stdlib .pyc included as in real PBS archives."""
    minor = ".".join(version.split(".")[:2])
    release = root / RELEASE
    release.mkdir(parents=True)
    name = archive_name(version, RELEASE, get_platform(PLATFORM), FLAVOR)
    make_tar_gz(stage_host_prefix(staged, base, minor, keep_pycache=True), release / name)
    (release / SUMS_NAME).write_text(f"{sha256sum(release / name)}  {name}\n")
    return root


def make_workspace(root: Path, version: str, python: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    shared = {"python": python, "build": {"platforms": [PLATFORM]}}
    (root / "shared-config.json").write_text(json.dumps(shared, indent=2))
    (root / f"python-{version}").mkdir()
    write_packages(root, version, PACKAGES)
    return root


def write_packages(ws: Path, version: str, packages: list[str]) -> None:
    (ws / f"python-{version}" / "config.json").write_text(json.dumps({"packages": {"dependencies": packages}}))


def copy_workspace(src: Path, dest: Path) -> Path:
    """The workspace's inputs (config, lock) in a new directory: no dist/, no .runenv/ (logs, scratch)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("dist", ".runenv"))
    return dest


def read_log(log: Path) -> tuple[list[Phase], float | None, str | None]:
    """The phases of one build log, its total as runenv timed it, and what it reused."""
    started: dict[str, float] = {}
    phases: list[Phase] = []
    total, reused = None, None
    for line in log.read_text(encoding="utf-8").splitlines():
        if m := LOG_LINE.match(line):
            if m["what"] == "started":
                started[m["phase"]] = float(m["at"])
            else:
                phases.append(Phase(m["phase"], started.get(m["phase"], float(m["at"])), float(m["secs"])))
        elif m := LOG_END.match(line):
            total, reused = float(m["secs"]), m["reused"]
    return phases, total, reused


def runenv_build(name: str, ws: Path, version: str, env: dict[str, str], *extra: str) -> Row:
    """`runenv build` in a fresh process: wall time, peak RSS, the artifact, and its phases from the build log."""
    logs = ws / ".runenv" / "logs"
    before = set(logs.glob("*.log")) if logs.is_dir() else set()
    rss = ws.parent / f"rss-{name}.json"
    args = [sys.executable, str(PEAK_RSS), str(rss), "-w", str(ws), "build", version, "-p", PLATFORM, "-o", "json"]
    start = time.perf_counter()
    proc = run([*args, *extra], env)
    seconds = time.perf_counter() - start
    artifact = json.loads(proc.stdout)[0]
    row = Row(name, seconds, tarball_bytes=artifact["size"], sha256=artifact["sha256"])
    new_logs = sorted(set(logs.glob("*.log")) - before)
    if new_logs:
        row.phases, row.task_seconds, row.reused = read_log(new_logs[-1])
    peak = json.loads(rss.read_text())
    row.peak_rss_mib = peak["self_kib"] / 1024
    row.peak_child_rss_mib = peak["children_kib"] / 1024
    row.cpu_seconds, row.child_cpu_seconds = peak["self_cpu"], peak["children_cpu"]
    return row


def runenv_run(ws: Path, version: str, env: dict[str, str]) -> float:
    """Seconds of `runenv run VERSION -- python -c pass` in the workspace, start-up of the CLI included."""
    start = time.perf_counter()
    run([sys.executable, "-m", "runenv", "-w", str(ws), "run", version, "--", "python", "-c", "pass"], env)
    return time.perf_counter() - start


def clean_pip_env(pip_cache: Path) -> dict[str, str]:
    """pip with no config files and no local wheel directories: the same index uv sees."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=str(pip_cache), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def cpu_now() -> tuple[float, float]:
    """User + system seconds of this process and of the children it waited for, so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def add_cpu(row: Row, since: tuple[float, float]) -> None:
    now = cpu_now()
    row.cpu_seconds, row.child_cpu_seconds = now[0] - since[0], now[1] - since[1]


def timed_step(row: Row, step: str, args: list[str], env: dict[str, str] | None = None) -> None:
    mark = time.perf_counter()
    run(args, env)
    row.steps[step] = time.perf_counter() - mark


def seed_way(work: Path, base: Path, minor: str) -> Row:
    """The seed system: copy the prefix, one pip download per dependency, pip install, tar czf."""
    env = clean_pip_env(work / "pip-cache")
    prefix, wheels, tarball = work / "python", work / "wheels", work / "python.tar.gz"
    python = str(prefix / "bin" / "python3")
    row = Row("seed way")
    cpu = cpu_now()
    start = time.perf_counter()
    shutil.copytree(base, prefix, symlinks=True)
    row.steps["copy interpreter"] = time.perf_counter() - start
    download = [python, "-m", "pip", "download", "--no-cache-dir", "--only-binary", ":all:"]
    download += ["--platform", "manylinux2014_x86_64", "--python-version", minor, "-d", str(wheels)]
    for req in PACKAGES:
        timed_step(row, f"pip download {req}", [*download, req], env)
    install = [python, "-m", "pip", "install", "--no-cache-dir", "--no-index", "--find-links", str(wheels)]
    timed_step(row, "pip install", [*install, *PACKAGES], env)
    timed_step(row, "tar czf", ["tar", "czf", str(tarball), "-C", str(work), prefix.name])
    row.seconds = time.perf_counter() - start
    add_cpu(row, cpu)
    row.tarball_bytes = tarball.stat().st_size
    row.sha256 = sha256sum(tarball)
    run([python, "-c", IMPORTS], env)  # not timed: the seed runtime must work too
    return row


def uv_and_pack(work: Path, base: Path) -> Row:
    """A fresh copy of the interpreter tree `base`, `uv pip install --compile-bytecode` (empty uv cache), then
    runenv's packer."""
    env = dict(clean_pip_env(work / "pip-cache"), UV_CACHE_DIR=str(work / "uv-cache"), UV_NO_CONFIG="1")
    prefix, tarball = work / "python", work / "python.tar.gz"
    python = str(prefix / "bin" / "python3")
    row = Row("uv + pack")
    cpu = cpu_now()
    start = time.perf_counter()
    shutil.copytree(base, prefix, symlinks=True)
    row.steps["copy interpreter"] = time.perf_counter() - start
    install = ["uv", "pip", "install", "--python", python, "--break-system-packages", "--compile-bytecode"]
    install += ["--only-binary", ":all:", "--python-platform", UV_PLATFORM]
    timed_step(row, "uv pip install --compile-bytecode", [*install, *PACKAGES, *RUNENV_ADDS], env)
    mark = time.perf_counter()
    with tarball.open("wb") as raw:
        out = HashingWriter(raw)
        write_tar(prefix, prefix.name, out, 0, min(4, os.cpu_count() or 1))  # runenv pack's level and threads
    row.steps["pack (ISA-L, runenv's packer)"] = time.perf_counter() - mark
    row.seconds = time.perf_counter() - start
    add_cpu(row, cpu)
    row.tarball_bytes, row.sha256 = out.size, out.digest.hexdigest()
    run([python, "-c", IMPORTS], env)  # not timed: the same set, installed and working
    return row


def tar_czf_of(tarball: Path, work: Path) -> Row:
    """`tar czf` of the tree in `tarball`, unpacked first (untimed)."""
    tree = work / "tree"
    tree.mkdir(parents=True)
    run(["tar", "xzf", str(tarball), "-C", str(tree)])
    out = work / "tree.tar.gz"
    row = Row("tar czf of the runtime")
    cpu = cpu_now()
    timed_step(row, "tar czf", ["tar", "czf", str(out), "-C", str(tree), *sorted(p.name for p in tree.iterdir())])
    row.seconds = row.steps["tar czf"]
    add_cpu(row, cpu)
    row.tarball_bytes, row.sha256 = out.stat().st_size, sha256sum(out)
    shutil.rmtree(tree)
    return row


def du_bytes(path: Path) -> int:
    return int(run(["du", "-sb", str(path)]).stdout.split()[0]) if path.exists() else 0


def cache_sizes(cache: Path) -> dict[str, int]:
    """Bytes in the runenv cache, in all and per top-level directory."""
    sizes = {"total": du_bytes(cache)}
    for sub in sorted(p for p in cache.iterdir() if p.is_dir()) if cache.is_dir() else []:
        sizes[sub.name] = du_bytes(sub)
    return sizes


def ratios(rows: dict[str, Row]) -> dict[str, float]:
    def r(a: str, b: str) -> float:
        return rows[a].seconds / rows[b].seconds

    return {
        "warm / tar czf": r("warm", "tar czf"),
        "change / cold": r("change", "cold"),
        "cold / seed": r("cold", "seed"),
        "cold / uv+pack": r("cold", "uv+pack"),
        "cold no-verify / uv+pack": r("cold-nv", "uv+pack"),
        "rebuild / cold": r("rebuild", "cold"),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=default_prefix(), help="CPython 3.12 prefix (default: pyenv's)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--tmp", type=Path, default=None, help="where the temporary directory goes")
    return parser.parse_args()


ROW_LABELS = {
    "cold": "cold (every cache empty)",
    "cold-nv": "cold --no-verify (caches of its own, empty)",
    "warm": "warm: same inputs, lock, caches hot, new dir",
    "rebuild": "warm --rebuild (trees and downloads hot)",
    "change": f"one package changed ({CHANGED[0]} -> {CHANGED[1].split('==')[1]})",
    "seed": "the seed way",
    "uv+pack": "uv pip install --compile-bytecode + ISA-L pack",
    "tar czf": "tar czf of the same tree",
}


def report_text(result: dict) -> str:
    rows, ratio = result["rows"], result["ratios"]
    host = result["host"]
    lines = [
        f"interpreter: {result['interpreter']}",
        f"packages: {' '.join(PACKAGES)}",
        f"host: {host['cpus']} CPUs, load average {host['load_before']} -> {host['load_after']}, {result['date']}",
        "",
        f"{'build':<50} {'time':>8} {'tarball':>9} {'peak RSS':>9}  sha256",
    ]
    for key, label in ROW_LABELS.items():
        row = rows[key]
        rss = f"{row['peak_rss_mib']:6.0f} MB" if row["peak_rss_mib"] is not None else " " * 9
        reused = f"  (reused: {row['reused']})" if row["reused"] else ""
        lines.append(
            f"{label:<50} {row['seconds']:6.1f} s {row['tarball_bytes'] / 1e6:6.1f} MB {rss}  "
            f"{(row['sha256'] or '')[:12]}{reused}"
        )
    lines.append("")
    for name, bound, what in TARGETS:
        met = "met" if ratio[name] <= bound else "MISSED"
        lines.append(f"{what:<36} {name:<16} {ratio[name]:6.3f}   target <= {bound:<5} {met}")
    lines.append(f"{'warm --rebuild against cold':<36} {'rebuild / cold':<16} {ratio['rebuild / cold']:6.3f}")
    nv = "cold no-verify / uv+pack"
    lines.append(f"{'cold without verification':<36} {nv:<16} {ratio[nv]:6.3f}")
    first, then = result["run_seconds"]
    lines.append(f"runenv run -- python -c pass: {first:.2f} s the first time (unpack), {then:.2f} s the next")
    rss_met = "met" if result["peak_rss_mib"] <= RSS_TARGET_MB else "MISSED"
    lines.append(
        f"peak RSS of the runenv process: {result['peak_rss_mib']:.0f} MB (target <= {RSS_TARGET_MB} MB, {rss_met}); "
        f"largest child: {result['peak_child_rss_mib']:.0f} MB"
    )
    cache = result["cache_bytes"]
    parts = ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in cache.items() if k != "total")
    uv_mb = result["uv_cache_bytes"] / 1e6
    lines.append(f"runenv cache after the runs: {cache['total'] / 1e6:.0f} MB ({parts}); uv cache {uv_mb:.0f} MB")
    lines.append(
        f"cold, cold --no-verify, warm, rebuild tarballs identical: {result['identical']} "
        f"(cold sha256 {rows['cold']['sha256']})"
    )
    lines.append("")
    lines.append("where the time goes (phases from runenv's build log: start -> end, seconds into the build)")
    for key in ("cold", "cold-nv", "rebuild", "change", "warm"):
        row = rows[key]
        startup = row["seconds"] - (row["task_seconds"] or 0)
        lines.append(
            f"  {ROW_LABELS[key]}: {row['seconds']:.1f} s, of which process start-up and CLI {startup:.1f} s; "
            f"CPU {row['cpu_seconds']:.1f} s in runenv + {row['child_cpu_seconds']:.1f} s in its children"
        )
        for p in row["phases"]:
            end = p["start"] + p["seconds"]
            lines.append(f"      {p['name']:<14} {p['start']:6.2f} -> {end:6.2f}  {p['seconds']:6.2f} s")
    for key in ("seed", "uv+pack"):
        row = rows[key]
        lines.append(
            f"  {ROW_LABELS[key]}: {row['seconds']:.1f} s; CPU {row['cpu_seconds']:.1f} s in the bench process "
            f"+ {row['child_cpu_seconds']:.1f} s in its children"
        )
        lines += [f"      {name:<40} {secs:6.1f} s" for name, secs in row["steps"].items()]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.python is None or not (args.python / "bin" / "python3").exists():
        sys.exit("no CPython prefix: pass --python PREFIX (e.g. a pyenv 3.12 version directory)")
    base = args.python.resolve()
    version = interpreter_version(base / "bin" / "python3")
    minor = ".".join(version.split(".")[:2])
    tmp = Path(tempfile.mkdtemp(prefix="runenv-build-bench-", dir=args.tmp))
    server = None
    try:
        cache, uv_cache = tmp / "runenv-cache", tmp / "uv-cache"
        env = dict(os.environ, RUNENV_CACHE_DIR=str(cache), UV_CACHE_DIR=str(uv_cache))
        staged = tmp / "interpreter" / "python"  # the tree in the archive runenv unpacks
        server = StaticServer(stage_mirror(tmp / "mirror", staged, base, version)).start()
        env["RUNENV_PBS_MIRROR"] = server.url
        cold_ws = make_workspace(tmp / "cold", version, {"release": RELEASE})
        load_before = os.getloadavg()[0]
        rows: dict[str, Row] = {}
        rows["cold"] = runenv_build("cold", cold_ws, version, env)
        nv_env = dict(env, RUNENV_CACHE_DIR=str(tmp / "nv-runenv-cache"), UV_CACHE_DIR=str(tmp / "nv-uv-cache"))
        nv_ws = make_workspace(tmp / "cold-nv", version, {"release": RELEASE})
        rows["cold-nv"] = runenv_build("cold-nv", nv_ws, version, nv_env, "--no-verify")
        shutil.rmtree(tmp / "nv-runenv-cache")
        shutil.rmtree(tmp / "nv-uv-cache")
        warm_ws = copy_workspace(cold_ws, tmp / "warm")
        rows["warm"] = runenv_build("warm", warm_ws, version, env)
        rows["rebuild"] = runenv_build("rebuild", warm_ws, version, env, "--rebuild")
        write_packages(warm_ws, version, [CHANGED[1] if p == CHANGED[0] else p for p in PACKAGES])
        rows["change"] = runenv_build("change", warm_ws, version, env)
        sizes, uv_bytes = cache_sizes(cache), du_bytes(uv_cache)
        rows["seed"] = seed_way(tmp / "seed", base, minor)
        rows["uv+pack"] = uv_and_pack(tmp / "uv", staged)
        stem_tarball = next((cold_ws / "dist").glob("*.tar.gz"))
        rows["tar czf"] = tar_czf_of(stem_tarball, tmp / "tar")
        run_seconds = [runenv_run(warm_ws, version, env) for _ in range(2)]
        runenv_rows = [rows[k] for k in ("cold", "cold-nv", "warm", "rebuild", "change")]
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "interpreter": f"CPython {version} from {base}, as a PBS archive on a loopback mirror (RUNENV_PBS_MIRROR)",
            "packages": PACKAGES,
            "changed": list(CHANGED),
            "host": {
                "cpus": os.cpu_count(),
                "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2),
            },
            "rows": {key: asdict(row) for key, row in rows.items()},
            "ratios": ratios(rows),
            "targets": {name: bound for name, bound, _ in TARGETS},
            "peak_rss_mib": max(r.peak_rss_mib or 0 for r in runenv_rows),
            "peak_child_rss_mib": max(r.peak_child_rss_mib or 0 for r in runenv_rows),
            "rss_target_mib": RSS_TARGET_MB,
            "cache_bytes": sizes,
            "uv_cache_bytes": uv_bytes,
            "run_seconds": run_seconds,
            "identical": rows["cold"].sha256 == rows["cold-nv"].sha256 == rows["warm"].sha256 == rows["rebuild"].sha256,
            "kept": str(tmp) if args.keep else None,
        }
        print(json.dumps(result, indent=2) if args.json else report_text(result))
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
