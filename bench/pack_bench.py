"""Pack a real runtime tree with runenv's packer and with `tar czf`; print time and size of both.

Usage: python3 bench/pack_bench.py [PREFIX]   (default: the running interpreter's sys.base_prefix)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv.build.pack import FALLBACK_EPOCH, write_tar  # noqa: E402
from runenv.cache import HashingWriter  # noqa: E402


def tree_size(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_symlink():
                total += path.stat().st_size
                files += 1
    return total, files


def runenv_pack(prefix: Path, out: Path, threads: int) -> tuple[float, str]:
    start = time.perf_counter()
    with out.open("wb") as raw:
        writer = HashingWriter(raw)
        write_tar(prefix, "python-bench-linux-x64", writer, FALLBACK_EPOCH, threads)
    return time.perf_counter() - start, writer.digest.hexdigest()


def tar_czf(prefix: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["tar", "czf", str(out), "-C", str(prefix.parent), prefix.name], check=True)
    return time.perf_counter() - start


def main() -> None:
    prefix = Path(sys.argv[1] if len(sys.argv) > 1 else sys.base_prefix).resolve()
    size, files = tree_size(prefix)
    print(f"tree: {prefix} ({size / 1e6:.0f} MB in {files} files); {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        tar_czf(prefix, out / "warm.tar.gz")  # warm the page cache so both read from memory
        rows = []
        for threads in (1, os.cpu_count() or 1):
            seconds, digest = runenv_pack(prefix, out / f"runenv-{threads}.tar.gz", threads)
            again, digest2 = runenv_pack(prefix, out / f"runenv-{threads}b.tar.gz", threads)
            assert digest == digest2, "runenv's packer is not deterministic"
            rows.append(
                (
                    f"runenv pack (isal, {threads} thread{'s' if threads > 1 else ''})",
                    min(seconds, again),
                    (out / f"runenv-{threads}.tar.gz").stat().st_size,
                )
            )
        seconds = tar_czf(prefix, out / "tar.tar.gz")
        rows.append(("tar czf (gzip -6)", seconds, (out / "tar.tar.gz").stat().st_size))
        for name, secs, nbytes in rows:
            print(f"{name:<32} {secs:6.2f} s  {nbytes / 1e6:7.1f} MB  ({size / secs / 1e6:5.0f} MB/s in)")
        identical = len({p.read_bytes() for p in out.glob("runenv-*.tar.gz")}) == 1
        print(f"byte-identical across runs and thread counts: {identical}")


if __name__ == "__main__":
    main()
