"""A tarball's sha256 remembered by its file identity, so `runenv run` does not re-hash it at every start.

The stamp holds the device, inode, size, mtime and ctime of the file it was computed from. Any write
to the file, a rename over it or a copy in its place changes at least one of them (ctime cannot be
set from user space), so a stamp never vouches for other bytes; on any mismatch the file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from runenv.cache import sha256_file
from runenv.files import write_text_atomic


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def known_sha256(path: Path, cache_root: Path) -> str:
    """The sha256 of `path`, from its stamp in `<cache>/stamps/` when the file is unchanged since it was hashed."""
    stamp = cache_root / "stamps" / hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    before = _identity(path.stat())
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        if data["identity"] == before and isinstance(data["sha256"], str) and len(data["sha256"]) == 64:
            return str(data["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    sha = sha256_file(path)
    if _identity(path.stat()) == before:  # not written to while it was read
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(stamp, json.dumps({"identity": before, "sha256": sha}))
        except OSError:
            pass  # a read-only cache only costs the next start a re-hash
    return sha
