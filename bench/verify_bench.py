"""Time the verify stage's checks (`check_prefix`: imports of every top-level and extension module, console
scripts, static checks, closure) on an unpacked runtime: through the fork-server tree, and with `--fresh`
also with one interpreter per module (the fallback path); prints min and median wall and CPU.

CPU is user+sys of every process the check ran (RUSAGE_CHILDREN: the fork server's children count
once the server has reaped them). Runs alternate between the paths so that load on the host hits both.

The Python version and platform come from PREFIX/runenv-manifest.toml.

Usage: python3 bench/verify_bench.py PREFIX [--runs N] [--workers W] [--fresh]
       e.g. python3 bench/verify_bench.py /dev/shm/ex2/python-3.12.1-linux-x64 --runs 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv.build.verify import check_prefix  # noqa: E402
from runenv.build.verify import imports as verify_imports  # noqa: E402
from runenv.compat import tomllib  # noqa: E402
from runenv.platforms import RuntimeLayout, get_platform  # noqa: E402

SERVED = verify_imports.served_imports


def one_run(prefix: Path, platform_key: str, version: str, workers: int | None, served: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one check_prefix; fails loudly when the runtime does not check clean."""
    verify_imports.served_imports = SERVED if served else lambda *args: verify_imports.Served({}, {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = check_prefix(RuntimeLayout(prefix, get_platform(platform_key), version), workers=workers)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not report.ok:
        raise SystemExit(f"{prefix} does not verify: {report.summary()}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--fresh", action="store_true", help="also time one interpreter per module")
    args = parser.parse_args()
    prefix = args.prefix.resolve()
    manifest = tomllib.loads((prefix / "runenv-manifest.toml").read_text())
    version, platform_key = manifest["python"], manifest["platform"]
    ways = [("fork-server tree", True)] + ([("one interpreter per module", False)] if args.fresh else [])
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in ways}
    for _ in range(args.runs):
        for name, served in ways:
            times[name].append(one_run(prefix, platform_key, version, args.workers, served))
    report = check_prefix(RuntimeLayout(prefix, get_platform(platform_key), version), workers=args.workers)
    print(
        f"{prefix}: {report.count('imports', 'modules')} modules "
        f"({report.count('imports', 'extensionModules')} extension modules), "
        f"{report.count('imports', 'scripts')} console scripts, {report.count('static', 'nativeFiles')} native "
        f"files, {args.runs} runs, workers={args.workers or 'default'}"
    )
    for name, runs in times.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {name:28} wall min {min(walls):5.2f} s median {statistics.median(walls):5.2f} s   "
            f"cpu min {min(cpus):5.2f} s median {statistics.median(cpus):5.2f} s"
        )


if __name__ == "__main__":
    main()
