"""Running uv's resolver for one runtime on one platform, and reading what it says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runenv import progress
from runenv.build.packages.vcs import VcsRequirement, git_failure, parse_vcs, repository_key
from runenv.compat import tomllib
from runenv.errors import StepError
from runenv.owner import temp_dir
from runenv.platforms import Platform
from runenv.proc import NotRun, output_tail, run_captured
from runenv.redact import redact


@lru_cache(maxsize=1)
def uv_bin() -> str:
    """The uv executable: the one shipped with the `uv` package, else the one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise StepError("uv not found", hint="install runenv with its dependencies (pip install uv)") from None
        return found


@lru_cache(maxsize=1)
def uv_version() -> str:
    """`uv --version` without the program name, e.g. `0.13.8`."""
    try:
        proc = run_captured([uv_bin(), "--version"], timeout=60, log=False)
    except NotRun as exc:
        raise StepError(f"cannot run uv --version: {exc}") from None
    if proc.returncode != 0:
        raise StepError(f"uv --version failed: {output_tail(proc.stderr) or f'exit {proc.returncode}'}")
    return parse_uv_version(proc.stdout)


def parse_uv_version(out: str) -> str:
    """The version in `uv --version`'s output (`uv 0.13.9 (x86_64-unknown-linux-gnu)`)."""
    words = out.split()
    return words[1] if len(words) > 1 else out.strip()


def index_args(registries: list[str], uses_machine_index: bool, strategy: str = "best-match") -> list[str]:
    """uv index options searching `registries` in their order, combined by `strategy`.

    uv searches every `--index` (in order) before the default index, so the last registry becomes
    `--default-index` (it replaces the machine's index); with the machine's index it stays last.
    """
    args = ["--index-strategy", "unsafe-best-match" if strategy == "best-match" else "first-index"]
    indexes = registries if uses_machine_index else registries[:-1]
    for url in indexes:
        args += ["--index", url]
    if not uses_machine_index and registries:
        args += ["--default-index", registries[-1]]
    return args


@dataclass(frozen=True)
class ResolveRequest:
    """One `uv pip compile` run: what to resolve, for which target, with which binary rules."""

    requirements: list[str]
    python_version: str
    platform: Platform
    manylinux: str
    macosx: str | None
    index: list[str]  # from index_args()
    no_binary: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    timeout: int = 300
    origins: dict[str, str] = field(default_factory=dict)  # index URL -> the config file and key that added it


@dataclass(frozen=True)
class Resolved:
    """uv's answer: the pylock document and, per package, its index and what required it."""

    pylock: dict[str, Any]
    index: dict[str, str]  # name -> index URL
    required_by: dict[str, list[str]]  # name -> parents ("" = a root requirement)


class NoFittingWheel(Exception):
    """uv found no usable wheel for these packages with wheels required."""

    def __init__(self, names: list[str], detail: str) -> None:
        super().__init__(detail)
        self.names = names
        self.detail = detail


# uv has no structured form for "no usable wheel"; its messages name the package in two places:
# the subject of "<requirement> has no usable wheels" and the backticked name in its hint.
_NO_WHEELS = re.compile(r" (?:has|have) no (?:usable |compatible )?wheels")
_HINTED = re.compile(r"Wheels are (?:required|available) for `([^`]+)`")


def _subject_name(before: str) -> str | None:
    """The package named by the requirement ending `before`: `name>=1.0.dev1`, `all versions of name`, `name<1 | >2`."""
    words = before.split()
    while words and (words[-1] == "|" or words[-1][:1] in "<>=!~"):
        words.pop()
    try:
        return canonicalize_name(Requirement(words[-1]).name) if words else None
    except InvalidRequirement:
        return None


def no_wheel_names(text: str) -> list[str]:
    """Names of the packages uv's error `text` says have no usable wheel, in order, normalised."""
    names = [_subject_name(text[: m.start()]) for m in _NO_WHEELS.finditer(text)]
    names += [canonicalize_name(n) for n in _HINTED.findall(text)]
    return list(dict.fromkeys(n for n in names if n))


_FETCH_FAILED = re.compile(r"Failed to fetch:? `?(https?://[^\s`]+)")


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def unreachable_index(text: str, registries: dict[str, str]) -> tuple[str, str] | None:
    """(registry URL, where it was configured) of the index uv's error `text` failed to fetch from, if any."""
    failed = _FETCH_FAILED.search(text)
    if failed is None:
        return None
    url = failed.group(1)
    owners = [r for r in registries if url.startswith(_without_credentials(r).rstrip("/") + "/")]
    if not owners:
        return url.rsplit("/", 2)[0], "the machine's configured index"
    best = max(owners, key=len)
    return best, registries[best]


def error_summary(text: str) -> str:
    """uv's error `text` on one line (at most 600 characters, warnings left out, secrets redacted)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]
    return redact(" ".join(lines)[:600]) if lines else "uv failed without a message"


def _run(args: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    try:
        return run_captured(args, env=env, timeout=timeout * 4)
    except NotRun as exc:
        if exc.timed_out:
            raise StepError(f"uv did not finish resolving within {timeout * 4}s") from None
        raise StepError(f"cannot run uv: {exc}") from None


def _environment(request: ResolveRequest) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env["UV_HTTP_TIMEOUT"] = str(request.timeout)
    if request.macosx and request.platform.os == "macos":
        env["MACOSX_DEPLOYMENT_TARGET"] = request.macosx
    return env


def _base_args(request: ResolveRequest, work: Path, *, wheels_only: bool = True) -> list[str]:
    (work / "requirements.in").write_text("\n".join(request.requirements) + "\n")
    args = [
        uv_bin(),
        "pip",
        "compile",
        str(work / "requirements.in"),
        "--python-version",
        request.python_version,
        "--python-platform",
        request.platform.uv_target(request.manylinux),
        "--no-header",
        "--no-python-downloads",
        "--quiet",
        *(["--only-binary", ":all:"] if wheels_only else []),
        *request.index,
    ]
    for name in request.no_binary:
        args += ["--no-binary", name]
    if request.excludes:
        (work / "excludes.txt").write_text("\n".join(request.excludes) + "\n")
        args += ["--excludes", str(work / "excludes.txt")]
    if request.overrides:
        (work / "overrides.txt").write_text("\n".join(request.overrides) + "\n")
        args += ["--overrides", str(work / "overrides.txt")]
    return args


def _via_name(item: str) -> str:
    """A parent named in `# via`: "" for a requirements file (`-r requirements.in`), else its normalised name."""
    return "" if item.startswith("-") else canonicalize_name(item)


def parse_annotations(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Index and parents per package from uv's requirements.txt output (`--annotation-style line`)."""
    index: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("--", "#")):
            continue
        if line[:1].isspace():
            source = re.match(r"^\s+#\s*from\s+(\S+)", line)
            if source and current:
                index[current] = source.group(1)
            continue
        requirement, *note = re.split(r"\s+#\s+", line, maxsplit=1)
        current = canonicalize_name(Requirement(requirement.rstrip(" \\")).name)
        via = note[0].removeprefix("via ").split(",") if note and note[0].startswith("via ") else []
        parents[current] = [_via_name(v.strip()) for v in via if v.strip()]
    return index, parents


def resolve(request: ResolveRequest) -> Resolved:
    """Resolve with wheels only (except `no_binary`); NoFittingWheel names the packages that lack one."""
    env = _environment(request)
    with temp_dir("lock") as work:
        base = _base_args(request, work)
        lock_file = work / "pylock.toml"
        # The same resolution twice at once: the PEP 751 lock, and the annotated text (index and parents).
        with ThreadPoolExecutor(max_workers=2) as pool:
            locking = pool.submit(
                progress.carry(_run),
                [*base, "--format", "pylock.toml", "--generate-hashes", "-o", str(lock_file)],
                env,
                request.timeout,
            )
            annotating = pool.submit(
                progress.carry(_run),
                [*base, "--emit-index-annotation", "--annotation-style", "line"],
                env,
                request.timeout,
            )
            proc, notes = locking.result(), annotating.result()
        if proc.returncode != 0:
            failed = git_failure(proc.stderr, request.requirements)
            if failed:
                raise StepError(f"{failed} (resolving for {request.platform.key})")
            names = no_wheel_names(proc.stderr)
            if names:
                raise NoFittingWheel(names, error_summary(proc.stderr))
            unreachable = unreachable_index(proc.stderr, request.origins)
            if unreachable is not None:
                raise StepError(
                    f"cannot read package index {redact(unreachable[0])} ({unreachable[1]}) while resolving for "
                    f"{request.platform.key}: {error_summary(proc.stderr)}",
                    hint="check the URL, the network and the credentials, or remove the registry",
                )
            raise StepError(f"cannot resolve runtime packages for {request.platform.key}: {error_summary(proc.stderr)}")
        pylock = tomllib.loads(lock_file.read_text(encoding="utf-8"))
        if notes.returncode != 0:
            raise StepError(f"uv failed to annotate the resolution: {error_summary(notes.stderr)}")
    index, parents = parse_annotations(notes.stdout)
    return Resolved(pylock, index, parents)


def name_vcs(request: ResolveRequest) -> dict[str, str]:
    """The names that the bare git requirements of `request` declare in their metadata: requirement → name.

    Only their own metadata is read (`--no-deps`), built if it is not static, so nothing else is resolved.
    """
    wanted = {text: parse_vcs(text) for text in request.requirements}
    with temp_dir("vcs-names") as work:
        out = work / "pylock.toml"
        args = [*_base_args(request, work, wheels_only=False), "--no-deps", "--format", "pylock.toml", "-o", str(out)]
        proc = _run(args, _environment(request), request.timeout)
        if proc.returncode != 0:
            failed = git_failure(proc.stderr, request.requirements)
            if failed:
                raise StepError(f"{failed} (resolving for {request.platform.key})")
            raise StepError(f"cannot read the metadata of git dependencies: {error_summary(proc.stderr)}")
        entries = tomllib.loads(out.read_text(encoding="utf-8")).get("packages", [])
    return vcs_names(wanted, entries)


def vcs_names(wanted: dict[str, VcsRequirement | None], entries: list[dict[str, Any]]) -> dict[str, str]:
    """requirement → name for each git requirement that one of uv's pylock `entries` locks (same repository,
    revision and subdirectory)."""
    names: dict[str, str] = {}
    for text, vcs in wanted.items():
        if vcs is None:
            continue
        for entry in entries:
            source = entry.get("vcs") or {}
            same = (source.get("requested-revision"), source.get("subdirectory")) == (vcs.rev, vcs.subdirectory)
            if same and repository_key(source.get("url", "")) == repository_key(vcs.url):
                names[text] = canonicalize_name(entry["name"])
    return names
