"""Safe, streaming extraction of interpreter tarballs: nothing outside the tree, no device files."""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import IO

from runenv.cache import CHUNK
from runenv.errors import IntegrityError


def open_compressed(path: Path) -> IO[bytes]:
    """A decompressing reader for `.tar.gz` (ISA-L, fast), `.tar.zst` or plain `.tar`."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        from isal import igzip

        return igzip.open(path, "rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise IntegrityError(f"{path.name}: zstd archives need the 'zstandard' package") from None
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"))  # type: ignore[return-value]
    return path.open("rb")


def member_target(name: str, strip: str | None) -> str | None:
    """The member's normalised path below the stripped top directory; None for the top directory itself."""
    norm = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError("absolute path")
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/".replace("\\", "/"):
        raise ValueError("path leaves the archive ('..')")
    if strip is None:
        return None if norm == "." else norm
    if norm == strip:
        return None
    if not norm.startswith(strip + "/"):
        raise ValueError(f"outside the top-level directory {strip}/")
    return norm[len(strip) + 1 :]


def _inside(rel_dir: str, link: str) -> bool:
    """Whether a relative symlink `link` placed in `rel_dir` stays within the tree."""
    if link.startswith("/") or not link:
        return False
    resolved = posixpath.normpath(posixpath.join(rel_dir, link))
    return resolved != ".." and not resolved.startswith("../")


def _check(member: tarfile.TarInfo, rel: str) -> None:
    if member.issym():
        if not _inside(posixpath.dirname(rel), member.linkname):
            raise ValueError(f"symlink to {member.linkname!r} points outside the tree")
    elif member.islnk():
        member_target(member.linkname, None)  # raises on absolute or '..'
    elif not (member.isfile() or member.isdir()):
        raise ValueError("device, fifo or other special file")


def extract(archive: Path, dest: Path, *, label: str, strip: str | None = "python") -> None:
    """Unpack `archive` into `dest` (made if missing), dropping the top-level `strip/` directory.

    A hostile member (absolute path, `..`, link leaving the tree, special file) raises IntegrityError
    naming the archive and the member; `dest` is then removed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    verified: set[Path] = set()  # directories already proven to be real and inside the tree
    try:
        with open_compressed(archive) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                try:
                    rel = member_target(member.name, strip)
                    if rel is None:
                        continue
                    _check(member, rel)
                    if member.islnk():
                        source = member_target(member.linkname, strip)
                        if source is None:
                            raise ValueError("hard link to the top directory")
                        member.linkname = source
                except ValueError as exc:
                    raise IntegrityError(f"{label}: refusing member {member.name!r}: {exc}") from None
                _write_member(tar, member, dest, rel, label, verified)
    except tarfile.TarError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise IntegrityError(f"{label}: not a valid tar archive: {exc}") from None
    except (OSError, EOFError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise IntegrityError(f"{label}: cannot unpack: {exc}") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _write_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, rel: str, label: str, verified: set[Path]
) -> None:
    target = dest / rel
    root = dest  # already resolved by extract()
    # Links already written may redirect a later member; judge by where the bytes would really land.
    parent = target.parent
    if parent in verified:
        real_parent = parent  # a real directory inside the tree stays one: members never replace directories
    else:
        parent.mkdir(parents=True, exist_ok=True)
        real_parent = parent.resolve()
        if not real_parent.is_relative_to(root):
            raise IntegrityError(f"{label}: refusing member {member.name!r}: written through a link leaving the tree")
        if real_parent == parent:
            verified.add(parent)
    if member.issym() and not Path(os.path.normpath(real_parent / member.linkname)).is_relative_to(root):
        raise IntegrityError(f"{label}: refusing member {member.name!r}: symlink points outside the tree")
    if member.isdir():
        target.mkdir(exist_ok=True)
        return
    if target.is_symlink() or target.exists():
        if target.is_dir() and not target.is_symlink():
            raise IntegrityError(f"{label}: member {member.name!r} replaces a directory")
        target.unlink()
    if member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        source = dest / member.linkname
        if source.is_symlink() or not source.is_file():
            raise IntegrityError(f"{label}: hard link {member.name!r} to a missing or non-regular member")
        os.link(source, target)
    else:
        reader = tar.extractfile(member)
        assert reader is not None
        with reader, target.open("wb") as out:
            shutil.copyfileobj(reader, out, CHUNK)
        os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
