"""Real wheels and sdists built by the tests, and a PEP 503 simple index of them served on loopback.

`build_test_index(root)` writes the whole tree once per session (see `INDEX_PACKAGES` for what is in it);
`package_index` is the session fixture serving it: `.url` is the server root, `.simple` the index URL.
`uv_env(tmp, index_url)` is the environment that keeps uv on that index and off the real cache.
"""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import io
import os
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from runenv.build.packages.assemble import WheelToInstall
from runenv.build.packages.lock import LockedPackage
from tests.helpers.http import StaticServer

# What the session index holds (name: what it is for).
INDEX_PACKAGES = {
    "tool-a": "pure wheel, console script `tool-a` + gui script `tool-a-gui`, depends on helper-lib",
    "helper-lib": "pure wheel, a dependency of tool-a",
    "datascripts": "wheel with .data/scripts (a #!python script), .data/data and .data/headers",
    "sdistonly": "only an sdist (setuptools backend, static pyproject metadata), console script `sdistonly`",
    "winonly": "only a win_amd64 wheel",
    "needs-excluded": "wheel depending on excluded-dep",
    "excluded-dep": "wheel, reached only as a dependency of needs-excluded",
    "nodeps-pkg": "wheel depending on heavy-dep (for noDeps)",
    "heavy-dep": "wheel, reached only as a dependency of nodeps-pkg",
    "needs-sdistonly": "wheel depending on sdistonly (a prodigy-prot needing freesasa, which has no wheel)",
    "needs-winonly": "wheel depending on winonly (a dependency with neither a Linux wheel nor an sdist)",
    "badhash": "wheel whose index entry carries a wrong sha256",
    "importfails": "wheel whose module `importfails` raises at import time (verification)",
    "setuptools": "a real setuptools wheel found on this machine (build backend, distutils shim)",
    "wheel": "a real wheel wheel found on this machine (setuptools' bdist_wheel)",
}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    out: Path,
    name: str,
    version: str,
    files: dict[str, str | bytes],
    *,
    requires: tuple[str, ...] = (),
    entry_points: str = "",
    tag: str = "py3-none-any",
) -> Path:
    """A wheel with `files` (paths inside the wheel, `.data/...` allowed; text or bytes), METADATA, WHEEL, RECORD."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = f"{dist}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents: dict[str, str | bytes] = {path.replace("{data}", f"{dist}.data"): text for path, text in files.items()}
    contents[f"{info}/METADATA"] = metadata
    contents[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: runenv-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    if entry_points:
        contents[f"{info}/entry_points.txt"] = entry_points
    raw = {path: text if isinstance(text, bytes) else text.encode() for path, text in contents.items()}
    rows = [(path, _record_hash(data), str(len(data))) for path, data in raw.items()]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([*rows, (f"{info}/RECORD", "", "")])
    contents[f"{info}/RECORD"] = buf.getvalue()
    path = out / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_in_zip, text in contents.items():
            info_ = zipfile.ZipInfo(name_in_zip, (2020, 1, 1, 0, 0, 0))
            info_.external_attr = (0o755 if "/scripts/" in name_in_zip else 0o644) << 16
            zf.writestr(info_, text)
    return path


_PROBE_BACKEND = """\
\"\"\"setuptools, recording the config settings it was given into the built module `<module>_settings`.\"\"\"
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(None)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    Path("MODULE_settings.py").write_text("SETTINGS = " + repr(dict(config_settings or {})) + "\\n")
    return _setuptools.build_wheel(wheel_directory, None, metadata_directory)
"""


def build_sdist(out: Path, name: str, version: str, module: str, *, script: str | None = None) -> Path:
    """A setuptools sdist with static PEP 621 metadata (resolvable without building it).

    Its in-tree backend wraps setuptools and writes the PEP 517 config settings it received into the
    module `<module>_settings` (SETTINGS dict), so tests can see what reached the backend.
    """
    base = f"{name.replace('-', '_')}-{version}"
    scripts = f'\n[project.scripts]\n{script} = "{module}:main"\n' if script else ""
    pyproject = (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "probe_backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = ">=3.8"\n{scripts}\n'
        f'[tool.setuptools]\npy-modules = ["{module}", "{module}_settings"]\n'
    )
    files = {
        "pyproject.toml": pyproject,
        "PKG-INFO": f"Metadata-Version: 2.2\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n",
        f"{module}.py": (f"import os, sys\n\ndef main():\n    print('{module} ' + sys.prefix)\n"),
        f"{module}_settings.py": "SETTINGS = {}\n",
        "probe_backend.py": _PROBE_BACKEND.replace("MODULE", module),
    }
    return write_sdist(out / f"{base}.tar.gz", base, files)


def write_sdist(path: Path, base: str, files: dict[str, str]) -> Path:
    """An sdist at `path` holding `files` (relative path: text) under the top directory `base`."""
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{base}/{rel}")
            member.size = len(data)
            member.mtime = 1577836800
            tar.addfile(member, io.BytesIO(data))
    return path


def machine_wheel(name: str) -> Path | None:
    """The newest real `name` wheel on this machine (bundled with Python installations), or None."""
    roots = {Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    roots |= {Path(p) for p in glob.glob(str(Path(sys.base_prefix).parent / "*"))}
    patterns = ["lib/python3*/ensurepip/_bundled", "lib/python3*/test", "lib/python3*/test/wheeldata"]
    found = [Path(p) for p in glob.glob(f"/usr/share/python-wheels/{name}-*-py3-none-any.whl")]
    for root in roots:
        for pattern in patterns:
            found += [Path(p) for p in glob.glob(str(root / pattern / f"{name}-*-py3-none-any.whl"))]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in parse_wheel_filename(path.name)[1].release)

    return max(found, key=version, default=None)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_simple_index(root: Path, artifacts: list[Path], wrong_hash: set[str] = frozenset()) -> None:
    """`root/simple/<name>/index.html` (PEP 503, `#sha256=` fragments, PEP 658 metadata) over `root/files/`."""
    by_name: dict[str, list[Path]] = {}
    for path in artifacts:
        if path.name.endswith(".whl"):
            name = parse_wheel_filename(path.name)[0]
            with zipfile.ZipFile(path) as zf:
                meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                (root / "files" / f"{path.name}.metadata").write_bytes(zf.read(meta))
        else:
            name = parse_sdist_filename(path.name)[0]
        by_name.setdefault(canonicalize_name(name), []).append(path)
    (root / "simple").mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{n}/">{n}</a>\n' for n in sorted(by_name))
    (root / "simple" / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    for name, paths in by_name.items():
        rows = []
        for path in paths:
            sha = "0" * 64 if name in wrong_hash else _sha256(path)
            extra = ""
            meta = root / "files" / f"{path.name}.metadata"
            if meta.exists():
                extra = f' data-core-metadata="sha256={_sha256(meta)}" data-dist-info-metadata="sha256={_sha256(meta)}"'
            rows.append(f'<a href="../../files/{path.name}#sha256={sha}"{extra}>{path.name}</a><br/>\n')
        (root / "simple" / name).mkdir(exist_ok=True)
        (root / "simple" / name / "index.html").write_text(f"<html><body>\n{''.join(rows)}</body></html>\n")


def build_test_index(root: Path) -> dict[str, Path]:
    """Build every artifact of INDEX_PACKAGES into `root/files` and write the simple index; returns name → file."""
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    made = {
        "tool-a": build_wheel(
            files,
            "tool-a",
            "1.0",
            {"tool_a/__init__.py": "import sys\n\ndef main():\n    print('tool-a runs from ' + sys.prefix)\n"},
            requires=("helper-lib>=1",),
            entry_points="[console_scripts]\ntool-a = tool_a:main\n[gui_scripts]\ntool-a-gui = tool_a:main\n",
        ),
        "helper-lib": build_wheel(files, "helper-lib", "1.2", {"helper_lib.py": "VALUE = 42\n"}),
        "datascripts": build_wheel(
            files,
            "datascripts",
            "0.5",
            {
                "datascripts.py": "",
                "{data}/scripts/ds-script": "#!python\nimport sys\nprint('ds-script ' + sys.prefix)\n",
                "{data}/data/share/datascripts/readme.txt": "data file\n",
                "{data}/headers/datascripts.h": "#define DATASCRIPTS 1\n",
            },
        ),
        "sdistonly": build_sdist(files, "sdistonly", "2.0", "sdistonly", script="sdistonly"),
        "winonly": build_wheel(files, "winonly", "1.0", {"winonly.py": ""}, tag="py3-none-win_amd64"),
        "needs-excluded": build_wheel(
            files, "needs-excluded", "1.0", {"needs_excluded.py": ""}, requires=("excluded-dep",)
        ),
        "excluded-dep": build_wheel(files, "excluded-dep", "1.0", {"excluded_dep.py": ""}),
        "nodeps-pkg": build_wheel(files, "nodeps-pkg", "1.0", {"nodeps_pkg.py": ""}, requires=("heavy-dep",)),
        "heavy-dep": build_wheel(files, "heavy-dep", "1.0", {"heavy_dep.py": ""}),
        "needs-sdistonly": build_wheel(
            files, "needs-sdistonly", "1.0", {"needs_sdistonly.py": ""}, requires=("sdistonly>=2",)
        ),
        "needs-winonly": build_wheel(files, "needs-winonly", "1.0", {"needs_winonly.py": ""}, requires=("winonly",)),
        "badhash": build_wheel(files, "badhash", "1.0", {"badhash.py": ""}),
        "importfails": build_wheel(
            files, "importfails", "1.0", {"importfails.py": "raise ImportError('importfails is broken on purpose')\n"}
        ),
    }
    for name in ("setuptools", "wheel"):
        found = machine_wheel(name)
        if found is not None:
            target = files / found.name
            target.write_bytes(found.read_bytes())
            made[name] = target
    write_simple_index(root, list(made.values()), wrong_hash={"badhash"})
    return made


@dataclass
class TestIndex:
    """The served index: `.simple` for uv/pip, `.files` name → artifact path, `.server` for request counts."""

    server: StaticServer
    root: Path
    files: dict[str, Path]

    __test__ = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def simple(self) -> str:
        return f"{self.server.url}/simple"

    def require(self, *names: str) -> None:
        """Skip the test when a machine-provided wheel (setuptools, wheel) was not found."""
        missing = [n for n in names if n not in self.files]
        if missing:
            pytest.skip(f"no {', '.join(missing)} wheel on this machine to serve offline")


@pytest.fixture(scope="session")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIndex]:
    """The session's loopback PEP 503 index holding INDEX_PACKAGES."""
    root = tmp_path_factory.mktemp("index")
    files = build_test_index(root)
    with StaticServer(root) as server:
        yield TestIndex(server, root, files)


@pytest.fixture
def index(package_index: TestIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TestIndex:
    """The session index, the only one uv and pip see in this test."""
    uv_env(monkeypatch, tmp_path, package_index.simple)
    return package_index


def uv_env(monkeypatch: pytest.MonkeyPatch, tmp: Path, index_url: str | None = None) -> None:
    """Point uv (and pip) at `index_url` only, with a private uv cache; no request leaves loopback."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp / "uv-cache"))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    for var in ("UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    if index_url:
        monkeypatch.setenv("UV_DEFAULT_INDEX", index_url)
        monkeypatch.setenv("UV_INDEX_URL", index_url)
        monkeypatch.setenv("PIP_INDEX_URL", index_url)


def wheel_item(index: TestIndex, name: str) -> WheelToInstall:
    """The index's wheel of `name` as the build hands it to the installer (locked, with its sha256)."""
    path = index.files[name]
    version = path.name.split("-")[1]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    pkg = LockedPackage(name, version, f"{index.url}/files/{path.name}", sha, "wheel", index.simple)
    return WheelToInstall(path, path.name, pkg)


PRIVATE_USER = "builder"
PRIVATE_PASSWORD = "SECRETz8Q4-p@ss"  # needs URL-encoding; contains the marker tests grep for


@pytest.fixture
def private_index(package_index: TestIndex) -> Iterator[TestIndex]:
    """The session index's files behind Basic auth (PRIVATE_USER, PRIVATE_PASSWORD) on another loopback port."""
    with StaticServer(package_index.root, basic_auth=(PRIVATE_USER, PRIVATE_PASSWORD)) as server:
        yield TestIndex(server, package_index.root, package_index.files)


def with_credentials(url: str, user: str = PRIVATE_USER, password: str = PRIVATE_PASSWORD) -> str:
    """`url` with `user:password@` (URL-encoded) in front of its host."""
    from urllib.parse import quote

    return url.replace("://", f"://{quote(user, safe='')}:{quote(password, safe='')}@", 1)
