"""How much an archive may unpack: its declared sizes against its own size, a ceiling, and the free space.

A few megabytes of gzip or deflate can declare gigabytes of zeros. Every member's size is declared
before its bytes (tar headers, the zip central directory), and the readers never produce more than
declared (tarfile reads exactly the header's size; zipfile stops at the central directory's size and
checks the CRC), so adding up declared sizes before writing stops a bomb before the disk (or the RAM
scratch) fills.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from runenv.errors import IntegrityError

MAX_RATIO = 100  # unpacked bytes per archive byte; interpreters, wheels and runtimes unpack 2-10x
SLACK = 256 << 20  # what any archive may unpack whatever its size (small archives of text compress well)
MAX_TOTAL = 64 << 30  # no interpreter, wheel or runtime is larger
RESERVE = 16 << 20  # left free on the destination's file system


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def free_bytes(path: Path) -> int | None:
    """Bytes this user may still write on the file system holding `path` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            st = os.statvfs(candidate)
        except FileNotFoundError:
            continue
        except (OSError, AttributeError):  # no statvfs (Windows): no free-space check
            return None
        return st.f_bavail * st.f_frsize
    return None


class UnpackBudget:
    """Declared sizes of one archive's members, checked as they are announced, before any of their bytes land."""

    def __init__(self, archive: Path, dest: Path, label: str) -> None:
        self.label = label
        self.dest = dest
        self.archive_size = archive.stat().st_size
        self.limit = min(MAX_TOTAL, max(SLACK, self.archive_size * MAX_RATIO))
        free = free_bytes(dest)
        self.free = None if free is None else max(0, free - RESERVE)
        self.total = 0

    def take(self, member: str, size: int) -> None:
        """Count `size` more bytes for `member`; IntegrityError when the archive would unpack too much."""
        self.total += max(0, size)
        if self.total > self.limit:
            raise IntegrityError(
                f"{self.label}: refusing member {member!r}: it declares {_mb(size)}, {_mb(self.total)} in all from a "
                f"{_mb(self.archive_size)} archive (more than {_mb(self.limit)}: {MAX_RATIO}x its size, at least "
                f"{_mb(SLACK)}, at most {_mb(MAX_TOTAL)})",
                hint="a decompression bomb or a damaged archive; nothing of it was kept",
            )
        if self.free is not None and self.total > self.free:
            raise IntegrityError(
                f"{self.label}: member {member!r} would need {_mb(self.total)} in all, but {self.dest} has only "
                f"{_mb(self.free)} free",
                hint="free some space, or set RUNENV_SCRATCH_DIR to a larger file system",
            )

    def take_zip(self, zf: zipfile.ZipFile) -> None:
        """Count every member of a zip (wheel, sdist) from its central directory, before anything is extracted."""
        for info in zf.infolist():
            self.take(info.filename, info.file_size)
