"""Cold and warm `runenv build` of a data-science runtime against the seed system's way, in one run.

The seed way: a copy of the interpreter prefix, one `pip download --only-binary :all:` per
dependency, `pip install --no-index --find-links`, `tar czf`. Both use the machine's default index
(the internet); the interpreter is a pyenv CPython served as a python-build-standalone archive from a
loopback mirror (`--interpreter local` uses it as `python.source: "local"` instead).

Usage: python3 bench/build_bench.py [--python PREFIX] [--interpreter pbs|local] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runenv.interpreter import SUMS_NAME, archive_name, interpreter_version  # noqa: E402
from runenv.platforms import get_platform  # noqa: E402
from tests.helpers.http import StaticServer  # noqa: E402
from tests.helpers.pbs import FLAVOR, make_tar_gz, stage_host_prefix  # noqa: E402

# Pinned to releases with CPython 3.12 manylinux2014 x86_64 wheels, so both ways install the same bytes.
PACKAGES = [
    "polars-lts-cpu==1.30.0",
    "numpy==2.2.6",
    "scipy==1.15.3",
    "pyarrow==20.0.0",
    "biopython==1.85",
    "pandas==2.2.3",
    "scikit-learn==1.6.1",
]
IMPORTS = "import polars, numpy, scipy, pyarrow, Bio, pandas, sklearn"
PLATFORM = "linux-x64"
RELEASE = "20240107"  # the PBS release that shipped 3.12.1; it sets the tarball mtimes
PHASE_TIMER = Path(__file__).resolve().parent / "phase_timer.py"
BACKGROUND = "(background)"  # phase_timer's mark for phases that overlap others


@dataclass
class Timing:
    """Wall seconds of one way of building, split into named steps, and the tarball it made."""

    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    tarball_bytes: int = 0
    sha256: str | None = None


def default_prefix() -> Path | None:
    found = sorted((Path.home() / ".pyenv" / "versions").glob("3.12.*"))
    return found[-1] if found else None


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


def stage_mirror(root: Path, base: Path, version: str) -> Path:
    """A PBS-style release directory (`<release>/<archive>` + SHA256SUMS) made from the prefix `base`,
    stdlib .pyc included as in real PBS archives."""
    minor = ".".join(version.split(".")[:2])
    release = root / RELEASE
    release.mkdir(parents=True)
    name = archive_name(version, RELEASE, get_platform(PLATFORM), FLAVOR)
    make_tar_gz(stage_host_prefix(root / "stage", base, minor, keep_pycache=True), release / name)
    shutil.rmtree(root / "stage")
    digest = run(["sha256sum", str(release / name)]).stdout.split()[0]
    (release / SUMS_NAME).write_text(f"{digest}  {name}\n")
    return root


def make_workspace(root: Path, version: str, python: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    shared = {"python": python, "build": {"platforms": [PLATFORM]}}
    (root / "shared-config.json").write_text(json.dumps(shared, indent=2))
    (root / f"python-{version}").mkdir()
    (root / f"python-{version}" / "config.json").write_text(json.dumps({"packages": {"dependencies": PACKAGES}}))
    return root


def runenv_build(
    ws: Path, version: str, env: dict[str, str], phases: Path, *, cold: bool, extra: tuple[str, ...] = ()
) -> Timing:
    """`runenv build` in a fresh process (phases timed inside it); dist/ is removed first, and for a
    cold build the lock too (the caller gives empty caches)."""
    shutil.rmtree(ws / "dist", ignore_errors=True)
    if cold:
        (ws / f"python-{version}" / f"pylock.{PLATFORM}.toml").unlink(missing_ok=True)
    args = [
        sys.executable,
        str(PHASE_TIMER),
        str(phases),
        "-w",
        str(ws),
        "build",
        version,
        "--platform",
        PLATFORM,
        "-o",
        "json",
        *extra,
    ]
    start = time.perf_counter()
    proc = run(args, env)
    seconds = time.perf_counter() - start
    steps = json.loads(phases.read_text())
    steps["startup, config, plan, waiting, other"] = seconds - sum(
        v for k, v in steps.items() if not k.endswith(BACKGROUND)
    )
    artifact = json.loads(proc.stdout)[0]
    return Timing(seconds, steps, artifact["size"], artifact["sha256"])


def seed_env(pip_cache: Path) -> dict[str, str]:
    """pip with no config files and no local wheel directories: the same index uv sees."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_CACHE_DIR=str(pip_cache), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def seed_way(work: Path, base: Path, minor: str) -> Timing:
    """The seed system: copy the prefix, one pip download per dependency, pip install, tar czf."""
    env = seed_env(work / "pip-cache")
    prefix, wheels, tarball = work / "python", work / "wheels", work / "python.tar.gz"
    python = str(prefix / "bin" / "python3")
    timing = Timing()
    start = time.perf_counter()
    shutil.copytree(base, prefix, symlinks=True)
    timing.steps["copy interpreter"] = time.perf_counter() - start
    for req in PACKAGES:
        mark = time.perf_counter()
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--no-cache-dir",
                "--only-binary",
                ":all:",
                "--platform",
                "manylinux2014_x86_64",
                "--python-version",
                minor,
                "-d",
                str(wheels),
                req,
            ],
            env,
        )
        timing.steps[f"pip download {req}"] = time.perf_counter() - mark
    mark = time.perf_counter()
    run([python, "-m", "pip", "install", "--no-cache-dir", "--no-index", "--find-links", str(wheels), *PACKAGES], env)
    timing.steps["pip install"] = time.perf_counter() - mark
    mark = time.perf_counter()
    run(["tar", "czf", str(tarball), "-C", str(work), prefix.name])
    timing.steps["tar czf"] = time.perf_counter() - mark
    timing.seconds = time.perf_counter() - start
    timing.tarball_bytes = tarball.stat().st_size
    run([python, "-c", IMPORTS], env)  # not timed: the seed runtime must work too
    return timing


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=default_prefix(), help="CPython 3.12 prefix (default: pyenv's)")
    parser.add_argument(
        "--interpreter",
        choices=("pbs", "local"),
        default="pbs",
        help="pbs: PBS-style archive on a loopback mirror (default); local: python.source local",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--tmp", type=Path, default=None, help="where the temporary directory goes")
    return parser.parse_args()


def report_text(result: dict) -> str:
    lines = [
        f"interpreter: {result['interpreter']}",
        f"packages: {' '.join(PACKAGES)}",
        f"host: {result['host']['cpus']} CPUs, load average {result['host']['load_before']} -> "
        f"{result['host']['load_after']}",
    ]
    for label, key in (
        ("runenv build, cold", "cold"),
        ("runenv build, warm", "warm"),
        ("cold, --no-verify", "cold_no_verify"),
        ("seed way", "seed"),
    ):
        timing = result[key]
        lines.append(f"{label:<20} {timing['seconds']:7.1f} s   tarball {timing['tarball_bytes'] / 1e6:6.1f} MB")
        lines += [f"    {name:<40} {secs:6.1f} s" for name, secs in timing["steps"].items()]
    ratio = result["ratio"]
    lines.append(f"cold: runenv takes {ratio['cold']:.3f} of the seed way's time ({1 / ratio['cold']:.1f}x faster)")
    lines.append(f"warm: runenv takes {ratio['warm']:.3f} of the seed way's time ({1 / ratio['warm']:.1f}x faster)")
    lines.append(
        f"cold without verification (like for like): {ratio['cold_no_verify']:.3f} of the seed way's time "
        f"({1 / ratio['cold_no_verify']:.1f}x faster)"
    )
    lines.append(f"cold and warm tarballs are the same bytes: {result['reproducible']}")
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
        env = dict(os.environ, RUNENV_CACHE_DIR=str(tmp / "runenv-cache"), UV_CACHE_DIR=str(tmp / "uv-cache"))
        if args.interpreter == "pbs":
            server = StaticServer(stage_mirror(tmp / "mirror", base, version)).start()
            env["RUNENV_PBS_MIRROR"] = server.url
            python = {"release": RELEASE}
            described = f"CPython {version} from {base}, as a PBS archive on a loopback mirror (RUNENV_PBS_MIRROR)"
        else:
            python = {"source": "local", "path": str(base)}
            described = f'CPython {version} from {base}, as python.source "local"'
        ws = make_workspace(tmp / "workspace", version, python)
        load_before = os.getloadavg()[0]
        cold = runenv_build(ws, version, env, tmp / "phases-cold.json", cold=True)
        warm = runenv_build(ws, version, env, tmp / "phases-warm.json", cold=False)
        # Like for like with the seed way, which verifies nothing: a second cold build, own empty caches.
        bare_env = dict(env, RUNENV_CACHE_DIR=str(tmp / "runenv-cache-2"), UV_CACHE_DIR=str(tmp / "uv-cache-2"))
        bare = runenv_build(ws, version, bare_env, tmp / "phases-bare.json", cold=True, extra=("--no-verify",))
        seed = seed_way(tmp / "seed", base, minor)
        result = {
            "interpreter": described,
            "packages": PACKAGES,
            "host": {
                "cpus": os.cpu_count(),
                "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2),
            },
            "cold": asdict(cold),
            "warm": asdict(warm),
            "cold_no_verify": asdict(bare),
            "seed": asdict(seed),
            "ratio": {
                "cold": cold.seconds / seed.seconds,
                "warm": warm.seconds / seed.seconds,
                "cold_no_verify": bare.seconds / seed.seconds,
            },
            "reproducible": cold.sha256 == warm.sha256,
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
