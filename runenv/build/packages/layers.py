"""A runtime prefix as a stack of directory trees (the interpreter, installed-tree cache entries, what the build
wrote), read as one tree by the tarball writer without copying anything into a staging directory.

A path present in several layers comes from the last one; a directory merges the children of every
layer where that path is a directory. A cache entry's .pyc record their source paths under the
entry's own top directory (`TREE_TOP/lib/…`); `retarget_pyc` rewrites that one string to the
artifact's (`<stem>/lib/…`), giving the bytes a compile in place would have given.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TREE_TOP = "runenv-tree"  # the top directory of a cache entry's files, as their .pyc name it
FLAG_REF = 0x80  # marshal's "an object referenced again later" bit on a type code


@dataclass(frozen=True)
class Layer:
    """One directory tree laid over the ones before it; `pyc_sources` maps the .pyc compiled under TREE_TOP
    (relative posix paths) to their sources. `key` names a layer whose files never change (an installed-tree
    cache entry), so that what is packed of it can be kept."""

    root: Path
    pyc_sources: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None

    def read(self, rel: str, top: str) -> bytes | None:
        """The bytes of `rel` as they belong under `top`, when they differ from the file's; else None."""
        source = self.pyc_sources.get(rel)
        if source is None:
            return None
        data = (self.root / rel).read_bytes()
        moved = retarget_pyc(data, f"{TREE_TOP}/{source}", f"{top}/{source}")
        if moved is None:  # checked when the entry was made; a file changed since is corrupt
            raise OSError(f"{self.root / rel} does not record its source {source}")
        return moved


def _marshalled(text: str) -> list[bytes]:
    """Every way marshal may write the string `text`: short or long form, interned or not, with FLAG_REF or not."""
    raw = text.encode("utf-8", "surrogatepass")
    if text.isascii() and len(raw) < 256:
        kinds, size = b"zZ", bytes([len(raw)])
    elif text.isascii():
        kinds, size = b"aA", struct.pack("<I", len(raw))
    else:
        kinds, size = b"ut", struct.pack("<I", len(raw))
    return [bytes([kind | flag]) + size + raw for kind in kinds for flag in (FLAG_REF, 0)]


def retarget_pyc(data: bytes, old: str, new: str) -> bytes | None:
    """`data` (a .pyc) with its source path `old` replaced by `new`, or None unless `old` occurs exactly once.

    Every code object of a module shares one filename object, which marshal writes once and then refers to
    by index, so the rewrite changes no reference and gives the bytes compiling with `new` gives.
    """
    found = [(o, n) for o, n in zip(_marshalled(old), _marshalled(new), strict=True) if o in data]
    if len(found) != 1 or data.count(found[0][0]) != 1:
        return None
    return data.replace(*found[0])


def _entries(directory: Path) -> dict[str, os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return {entry.name: entry for entry in it}


@dataclass(frozen=True)
class Entry:
    """One path of the merged tree: its lstat and layer (the last that has it), the layer whose run holds it
    (`placed`: that one, or for a directory the first layer where it is one), and every layer that has it."""

    rel: str
    st: os.stat_result
    layer: int
    placed: int
    present: tuple[int, ...]


def walk_entries(layers: list[Layer], rel: str = "", among: tuple[int, ...] | None = None) -> Iterator[Entry]:
    """The merged tree of `layers` (indices into it), depth first, names sorted bytewise."""
    found: dict[str, list[tuple[os.stat_result, int]]] = {}
    for index in among if among is not None else range(len(layers)):
        directory = layers[index].root / rel if rel else layers[index].root
        for name, entry in _entries(directory).items():
            found.setdefault(name, []).append((entry.stat(follow_symlinks=False), index))
    for name in sorted(found, key=lambda n: n.encode("utf-8", "surrogateescape")):
        st, index = found[name][-1]
        path = f"{rel}/{name}" if rel else name
        present = tuple(i for _s, i in found[name])
        if stat.S_ISDIR(st.st_mode):
            below = tuple(i for s, i in found[name] if stat.S_ISDIR(s.st_mode))
            yield Entry(path, st, index, below[0], present)
            yield from walk_entries(layers, path, below)
        else:
            yield Entry(path, st, index, index, present)


def walk_layers(layers: list[Layer]) -> Iterator[tuple[str, os.stat_result, Layer]]:
    """(relative posix path, lstat, layer it comes from) of the merged tree, depth first, names sorted bytewise."""
    for entry in walk_entries(layers):
        yield entry.rel, entry.st, layers[entry.layer]


def runs(layers: list[Layer]) -> list[tuple[list[Entry], list[tuple[str, bool]]]]:
    """The merged tree cut into one run per layer, each in walk order: a file or link goes in the run of the
    layer it comes from, a directory in the run of the first layer where it is one. With each run, the paths
    of its layer that another run holds, and whether the merged tree has a directory there (below one, the
    layer's own files still count; below a file or link of another layer, they are hidden): what the run of
    a kept layer depends on besides the layer."""
    cut: list[tuple[list[Entry], list[tuple[str, bool]]]] = [([], []) for _ in layers]
    for entry in walk_entries(layers):
        cut[entry.placed][0].append(entry)
        for index in entry.present:
            if index != entry.placed:
                cut[index][1].append((entry.rel, stat.S_ISDIR(entry.st.st_mode)))
    return cut


def materialise(prefix: Path, layers: list[Layer]) -> None:
    """Write `layers` into `prefix` itself (for a hook that reads or changes the finished tree)."""
    for rel, st, layer in walk_layers([Layer(prefix), *layers]):
        if layer.root == prefix:
            continue
        target, source = prefix / rel, layer.root / rel
        is_dir, was_dir = stat.S_ISDIR(st.st_mode), target.is_dir() and not target.is_symlink()
        if was_dir and not is_dir:
            shutil.rmtree(target)
        elif target.is_symlink() or (target.exists() and is_dir and not was_dir):
            target.unlink()
        if is_dir:
            target.mkdir(exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        else:
            data = layer.read(rel, prefix.name)
            if data is None:
                shutil.copyfile(source, target)
            else:
                target.write_bytes(data)
            os.chmod(target, stat.S_IMODE(st.st_mode))
