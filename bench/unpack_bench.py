"""Time runenv's safe extraction of a tarball into a directory, N times; print min and median.

Usage: python3 bench/unpack_bench.py TARBALL DIR [-n N] [--strip NAME]

Each run extracts into a fresh directory under DIR, after an untimed `sync` so that one run's
write-back is not charged to the next. The trees are removed only after the last run: on ext4
without a journal (this VM's disk), the inode allocator checks and skips, one by one, every inode
freed in the last 60 s (300 s while its inode table block is dirty), so creating files soon after
deleting many is slow, whoever deleted them; the system time shows it.
Without `--strip` the top directory is kept, as `runenv verify` and `run` do; `--strip python` is
how interpreter archives are unpacked. The CPU time of all threads is printed too, split into user
(runenv and the decompressor) and system (the kernel creating and filling files): on a busy machine
it moves less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv.archive import extract  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path)
    parser.add_argument("dir", type=Path, help="where to extract (e.g. /dev/shm or a directory on disk)")
    parser.add_argument("-n", type=int, default=5, help="number of runs (default 5)")
    parser.add_argument("--strip", default=None, help="top-level directory to drop (default: keep it)")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    args.tarball.read_bytes()  # warm the page cache: time the extraction, not the first read
    runs = Path(tempfile.mkdtemp(dir=args.dir, prefix="unpack-bench-"))
    wall, user, system = [], [], []
    try:
        for i in range(args.n):
            os.sync()
            start, before = time.perf_counter(), os.times()
            extract(args.tarball, runs / str(i), label=args.tarball.name, strip=args.strip)
            wall.append(time.perf_counter() - start)
            after = os.times()
            user.append(after.user - before.user)
            system.append(after.system - before.system)
    finally:
        shutil.rmtree(runs)
    print(
        f"{args.tarball.name} -> {args.dir}: {args.n} runs, min {min(wall):.2f} s, "
        f"median {statistics.median(wall):.2f} s ({' '.join(f'{t:.2f}' for t in wall)}); "
        f"CPU median user {statistics.median(user):.2f} s, system {statistics.median(system):.2f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
