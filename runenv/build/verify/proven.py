"""Import results kept per distribution: a distribution whose modules imported before is not imported again
while its bytes, and the bytes of every distribution its imports loaded, are the same.

Verifying a tarball hashes each file as it is unpacked (runenv.archive). A distribution's digest covers the
files its RECORD lists and the .pyc compiled from them; every other file of the runtime (the interpreter,
files no RECORD lists such as copyFiles, start-up hooks) goes into one context digest with the platform,
the Python version, how this host runs the target and runenv's version. When each module of a distribution
imported through the fork server, which reports the top-level modules every import loaded, an entry
`<cache>/verified-imports/<key>.json` (key: the context, the distribution's name and digest) records the
digests of the distributions those imports loaded. A later verification skips the distribution's imports
when that entry is there and each distribution it records still has the same digest: a changed dependency
(declared or not: pandas loads pyarrow when it is installed) makes it import again. Failures are never
kept, and console scripts, static checks, the closure and the smoke test run every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import runenv
from runenv.build.manifest import MANIFEST_NAME
from runenv.build.verify.discovery import Distribution, is_startup_hook
from runenv.files import write_text_atomic

PROVEN_FORMAT = 1  # bump when what a kept import result means changes
# runenv's manifest lists every package, so it changes with any of them; no import reads it.
NOT_READ_BY_IMPORTS = frozenset({MANIFEST_NAME})
_PYC = re.compile(r"(?P<dir>(?:.*/)?)__pycache__/(?P<name>[^/.]+)\.[^/]+\.pyc")


def source_of(pyc: str) -> str | None:
    """The source a `__pycache__/NAME.TAG[.opt-N].pyc` was compiled from (`NAME.py` beside the cache)."""
    found = _PYC.fullmatch(pyc)
    return f"{found['dir']}{found['name']}.py" if found else None


def top_level_name(site_relative: str) -> str | None:
    """The top-level module a path inside site-packages belongs to (`numpy/core/x.py` → numpy)."""
    first, _, rest = site_relative.partition("/")
    if first.endswith((".dist-info", ".data")) or first == "__pycache__":
        return None
    name = first if rest else first.split(".", 1)[0]
    return name if name.isidentifier() else None


@dataclass(frozen=True)
class Digests:
    """What imports depend on, from the digests of a runtime's files."""

    context: str
    dists: dict[str, str]  # distribution → digest of its files
    top_level: dict[str, tuple[str, ...]]  # top-level module → the distributions that install files of it
    components: dict[str, tuple[str, ...]]  # first path component in site-packages → distributions with files there

    def used_by(self, used: Iterable[str]) -> set[str] | None:
        """The distributions that what an import used (the fork server's `Used.lines`) belongs to; None when
        that is not fully known."""
        found: set[str] = set()
        for line in used:
            kind, _, name = line.partition(" ")
            if kind == "module":
                found.update(self.top_level.get(name, ()))
            elif kind == "site":
                found.update(self.components.get(name, ()))
            else:
                return None
        return found


def digests_of(
    files: dict[str, str], dists: list[Distribution], site: str, platform: str, python_version: str, runs_how: str
) -> Digests:
    """The digests of `dists` and of the rest of the runtime, from `files` (path relative to the prefix → sha256)."""
    owners = {file: dist.name for dist in dists for file in dist.files}
    lines: dict[str, list[str]] = {dist.name: [] for dist in dists}
    context = [f"{PROVEN_FORMAT} {runenv.__version__} {platform} {python_version} {runs_how} {_host_libc()}"]
    for path, digest in sorted(files.items()):
        source = source_of(path)
        owner = owners.get(path) or (owners.get(source) if source else None)
        if owner is not None:
            lines[owner].append(f"{path}\0{digest}")
        hook = path.startswith(site + "/") and is_startup_hook(path[len(site) + 1 :])
        if (owner is None and path not in NOT_READ_BY_IMPORTS) or hook:
            context.append(f"{path}\0{digest}")  # a start-up hook runs before every import, whoever installs it
    for dist in dists:
        lines[dist.name] += [f"{file}\0missing" for file in dist.files if file not in files]
    top_level: dict[str, list[str]] = {}
    components: dict[str, list[str]] = {}
    for dist in dists:
        for file in dist.files:
            if not file.startswith(site + "/"):
                continue
            inside = file[len(site) + 1 :]
            for table, key in ((top_level, top_level_name(inside)), (components, inside.split("/", 1)[0])):
                if key is not None and dist.name not in table.setdefault(key, []):
                    table[key].append(dist.name)
    return Digests(
        _digest(context),
        {name: _digest(sorted(entries)) for name, entries in lines.items()},
        {name: tuple(found) for name, found in top_level.items()},
        {name: tuple(found) for name, found in components.items()},
    )


def _host_libc() -> str:
    """This host's C library (what natively run imports load besides the runtime's files)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or "libc unknown"
    except (AttributeError, ValueError, OSError):
        return "libc unknown"


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class ProvenImports:
    """The kept import results of one runtime's distributions, in `<cache>/verified-imports/`."""

    def __init__(self, cache_root: Path, digests: Digests, *, reuse: bool = True) -> None:
        self.directory = cache_root / "verified-imports"
        self.digests = digests
        self.reuse = reuse  # False: everything is imported again (`--recheck`), and what passes is kept

    def _entry(self, dist: str) -> Path:
        key = _digest([self.digests.context, dist, self.digests.dists[dist]])
        return self.directory / f"{key}.json"

    def proven(self, dists: Iterable[str]) -> set[str]:
        """The distributions among `dists` whose imports passed before with these bytes and what they loaded."""
        found: set[str] = set()
        for dist in dists if self.reuse else ():
            try:
                record = json.loads(self._entry(dist).read_text(encoding="utf-8"))
                loaded, used = record["loaded"], record["used"]
                now = self.digests.used_by(used) if isinstance(used, list) else None
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            same = isinstance(loaded, dict) and all(self.digests.dists.get(d) == h for d, h in loaded.items())
            # What the imports used then belongs to no distribution that was not there: none added or moved in.
            if same and now is not None and now <= loaded.keys():
                found.add(dist)
        return found

    def remember(self, dist: str, used: Iterable[str]) -> None:
        """Keep that every module of `dist` imported, using `used` (the fork server's lines); not when what
        they used is not fully known."""
        used = sorted(used)
        loaded = self.digests.used_by(used)
        if loaded is None:
            return
        record = {"loaded": {d: self.digests.dists[d] for d in sorted(loaded | {dist})}, "used": used}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self._entry(dist), json.dumps(record, sort_keys=True))
        except OSError:
            pass  # a cache that cannot be written only costs the next verification its time
