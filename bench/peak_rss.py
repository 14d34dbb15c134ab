"""Run the runenv CLI and, when it exits, write its peak RSS and CPU time to a JSON file (for bench/build_bench.py).

Usage: python3 bench/peak_rss.py OUT.json <runenv arguments…>

`self_kib` is the runenv process's own peak; `children_kib` the largest of the processes it waited for (uv, the
byte-compile workers, verification's interpreters), as `getrusage` reports them, in KiB; `self_cpu` and
`children_cpu` the user + system seconds of the process and of all those it waited for.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runenv.cli import main  # noqa: E402


def record(out: Path, pid: int) -> None:
    if os.getpid() != pid:  # a forked child exiting through Python must not overwrite the parent's figures
        return
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = {
        "self_kib": own.ru_maxrss,
        "children_kib": children.ru_maxrss,
        "self_cpu": own.ru_utime + own.ru_stime,
        "children_cpu": children.ru_utime + children.ru_stime,
    }
    out.write_text(json.dumps(peak))


if __name__ == "__main__":
    atexit.register(record, Path(sys.argv[1]), os.getpid())
    main(sys.argv[2:])
