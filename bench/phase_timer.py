"""Run the runenv CLI with its build phases timed; the seconds per phase go to a JSON file.

Usage: python3 bench/phase_timer.py OUT.json <runenv arguments…>   (used by bench/build_bench.py)
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import runenv.build as build  # noqa: E402
from runenv.cli import main  # noqa: E402

# Functions `runenv.build` calls, in pipeline order; the two interpreter steps are entries of STEPS.
# `ensure_lock` and `fetch_all` run in a background thread while the interpreter is provisioned, and
# byte-compiling runs beside `install_wheels`: "byte-compile, after install" is only what is left then.
PHASES = (
    "ensure_lock",
    "fetch_all",
    "handle_sdist",
    "install_wheels",
    "copy_files",
    "write_shim",
    "pack",
    "verify_tarball",
)
OVERLAPPED = ("ensure_lock", "fetch_all")
BACKGROUND = "(background)"  # marks phases whose time overlaps others' and is not part of the sum
seconds: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - start

    return run


def instrument() -> None:
    """Replace the phase functions in `runenv.build` by timed wrappers."""
    for name in PHASES:
        label = f"{name} {BACKGROUND}" if name in OVERLAPPED else name
        setattr(build, name, timed(label, getattr(build, name)))
    build.STEPS[:] = [step if step is build.install_packages else timed(step.__name__, step) for step in build.STEPS]
    build.ByteCompiler.finish = timed("byte-compile, after install", build.ByteCompiler.finish)  # type: ignore[method-assign]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    instrument()
    atexit.register(lambda: out.write_text(json.dumps(dict(seconds), indent=2)))
    main(sys.argv[2:])
