"""The installed-tree cache: each wheel installed and byte-compiled once per (wheel, target layout, Python version,
compiler, TREE_FORMAT), shared by every runtime and platform that installs it the same way.

An entry is `<cache>/trees/<key>/`: `runenv-tree/` holds the wheel's files as they land in a runtime prefix
(RECORD, INSTALLER, scripts, .pyc), and `entry.json` lists every file with its size and which .pyc record
their source under `runenv-tree/` (rewritten to the artifact's top directory when packed). An entry is made
in an owned directory in `<cache>/tmp/` and renamed in whole once complete; before each use its files are
compared with the list, and an entry that differs is removed and made again, so a killed or damaged build
never leaves an entry that a later build trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from runenv.build.packages.assemble import WheelToInstall, install_wheels
from runenv.build.packages.bytecode import BATCH_FILES, ByteCompiler, Compiler, pyc_path
from runenv.build.packages.layers import TREE_TOP, Layer, retarget_pyc
from runenv.cache import Cache, sha256_file
from runenv.errors import StepError
from runenv.files import publish_dir
from runenv.owner import discard, owned_dir
from runenv.platforms import Platform, RuntimeLayout

# Bump when the same wheel would install or compile to other files (installer options, compile flags, layout).
TREE_FORMAT = 2  # 2: the compile worker became a module (its names can change marshal's FLAG_REF bits)
TREE_STAGING = "tree-"  # `<cache>/tmp/tree-*/`: an entry being made, or a damaged one being removed (owned)
ENTRY = "entry.json"


@dataclass(frozen=True)
class InstalledTree:
    """A checked cache entry: its files (relative posix path → size), and the .pyc to rewrite with their sources."""

    directory: Path
    files: dict[str, int]
    pyc_sources: dict[str, str]

    @property
    def root(self) -> Path:
        return self.directory / TREE_TOP

    def layer(self) -> Layer:
        return Layer(self.root, self.pyc_sources, key=self.directory.name)


def tree_key(item: WheelToInstall, platform: Platform, python_version: str, compiler: Compiler | None) -> str:
    """The digest of everything the files of `item`'s installed tree depend on."""
    wheel = item.package.sha256 if item.how == "wheel" else sha256_file(item.path)
    data = {
        "format": TREE_FORMAT,
        "wheel": wheel,
        "filename": item.filename,  # installer reads the distribution's name and version from it
        "sitePackages": platform.site_packages(python_version),
        "scripts": platform.scripts_dir,
        "python": platform.python_exe(python_version),  # what the script launchers run
        "windows": platform.is_windows,  # launcher kind and include directory
        "version": python_version,
        "compiler": compiler.version if compiler is not None else None,
        "batchFiles": BATCH_FILES,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _listing(root: Path) -> dict[str, int]:
    """Every file below `root` (relative posix path → size); OSError for anything but files and directories."""
    files: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                files[path.relative_to(root).as_posix()] = st.st_size
            elif not stat.S_ISDIR(st.st_mode):
                raise OSError(f"{path} is not a file or directory")
    return files


def find_tree(cache: Cache, key: str) -> InstalledTree | None:
    """The entry for `key` when its files are exactly those its list names, with their sizes; a damaged entry is
    removed and None returned."""
    directory = cache.root / "trees" / key
    try:
        meta = json.loads((directory / ENTRY).read_text(encoding="utf-8"))
        if meta["format"] != TREE_FORMAT or meta["key"] != key or _listing(directory / TREE_TOP) != meta["files"]:
            raise ValueError("files differ from the entry's list")
        return InstalledTree(directory, dict(meta["files"]), dict(meta["pycSources"]))
    except FileNotFoundError:
        if not directory.exists():
            return None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    discard(directory, cache.root / "tmp", TREE_STAGING)
    return None


def make_tree(
    cache: Cache,
    key: str,
    item: WheelToInstall,
    platform: Platform,
    python_version: str,
    compiler: Compiler | None,
    pool: ThreadPoolExecutor,
) -> InstalledTree:
    """Install and byte-compile `item` into a new entry for `key`, renamed into the cache once complete."""
    final = cache.root / "trees" / key
    try:
        with owned_dir(cache.root / "tmp", TREE_STAGING) as staging:
            entry = staging / "entry"
            root = entry / TREE_TOP
            root.mkdir(parents=True)
            layout = RuntimeLayout(root, platform, python_version)  # the tree is laid out as the runtime's prefix
            with ByteCompiler(layout, compiler=compiler, pool=pool) as bytecode:
                install_wheels(layout, [item], on_installed=bytecode.submit)
                bytecode.finish()
            pyc_sources = {}
            for source in bytecode.submitted:
                pyc, rel = pyc_path(source, python_version), source.relative_to(root).as_posix()
                if retarget_pyc(pyc.read_bytes(), f"{TREE_TOP}/{rel}", f"{TREE_TOP}/{rel}") is None:
                    raise OSError(f"{pyc} does not record its source {rel} once")
                pyc_sources[pyc.relative_to(root).as_posix()] = rel
            meta = {"format": TREE_FORMAT, "key": key, "files": _listing(root), "pycSources": pyc_sources}
            (entry / ENTRY).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
            publish_dir(entry, final)  # or another build made the same entry first: use that one
    except OSError as exc:
        raise StepError(
            f"cannot cache the installed tree of {item.filename} in {cache.root}: {exc.strerror or exc}",
            hint="check that directory, or point RUNENV_CACHE_DIR elsewhere",
        ) from None
    made = find_tree(cache, key)
    if made is None:
        raise StepError(f"the installed tree of {item.filename} in {final} changed while it was made")
    return made


class TreeBuilder:
    """Installed trees for one (platform, Python version), each taken from the cache or made there in the background.

    Use it as a context manager: leaving the block early drops the trees not yet started.
    """

    def __init__(self, cache: Cache, platform: Platform, python_version: str, compiler: Compiler | None) -> None:
        self.cache, self.platform, self.python_version, self.compiler = cache, platform, python_version, compiler
        cpus = os.cpu_count() or 1
        self._compile = ThreadPoolExecutor(max_workers=cpus)
        self._jobs = ThreadPoolExecutor(max_workers=cpus + 1)  # one installing while the others wait on compiles
        self.reused: list[str] = []  # file names of the wheels whose trees were in the cache

    def __enter__(self) -> TreeBuilder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._jobs.shutdown(wait=True, cancel_futures=True)
        self._compile.shutdown(wait=True, cancel_futures=True)

    def submit(self, item: WheelToInstall) -> Future[InstalledTree]:
        return self._jobs.submit(self._tree, item)

    def _tree(self, item: WheelToInstall) -> InstalledTree:
        key = tree_key(item, self.platform, self.python_version, self.compiler)
        found = find_tree(self.cache, key)
        if found is not None:
            self.reused.append(item.filename)
            return found
        return make_tree(self.cache, key, item, self.platform, self.python_version, self.compiler, self._compile)
