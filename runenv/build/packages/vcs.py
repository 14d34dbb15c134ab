"""Git dependencies: the requirement forms, the checkout of a locked commit (cached by commit), its wheel."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from runenv.errors import BuildError, FetchError
from runenv.files import publish_dir
from runenv.owner import discard, owned_dir
from runenv.platforms import major_minor
from runenv.proc import NotRun, output_tail, run_captured
from runenv.redact import redact

if TYPE_CHECKING:  # the config models parse git URLs here: loading a config needs no HTTP client
    from runenv.fetch import Downloader

VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")
_URL = re.compile(r"^git\+(https?|ssh|git|file)://\S+$")


@dataclass(frozen=True)
class VcsRequirement:
    """A dependency on a git repository: `git+URL[@rev][#egg=name]` or PEP 508 `name @ git+URL[@rev]`."""

    text: str  # as written in the config
    url: str  # what git fetches: no `git+`, no `@rev`, no fragment
    rev: str | None
    name: str | None  # declared by `name @ …` or `#egg=name`; None for the bare form
    subdirectory: str | None = None

    @property
    def plan_name(self) -> str:
        """The declared name, else the repository's (`…/org/Repo.git` → `repo`) until metadata tells the real one."""
        if self.name:
            return canonicalize_name(self.name)
        last = urllib.parse.urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        return canonicalize_name(re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-._") or "vcs-dependency")


def is_vcs_text(text: str) -> bool:
    """True for a bare VCS URL (`git+…`, `hg+…`) written as a requirement."""
    return text.strip().lower().startswith(VCS_SCHEMES)


def parse_vcs_url(url: str, text: str, name: str | None = None) -> VcsRequirement:
    """Split `git+URL[@rev][#fragment]`; anything that is not a git URL raises ValueError naming `text`."""
    if not _URL.match(url):
        kind = url.split("+", 1)[0] if "+" in url.split("://", 1)[0] else "URL"
        if kind in ("hg", "svn", "bzr"):
            raise ValueError(f"{text!r}: only git repositories are supported, not {kind}")
        raise ValueError(f"{text!r}: expected git+https://host/path[@revision]")
    parts = urllib.parse.urlsplit(url[len("git+") :])
    fragment = dict(urllib.parse.parse_qsl(parts.fragment))
    path, rev = parts.path, None
    if "@" in path:
        path, rev = path.rsplit("@", 1)
        if not rev:
            raise ValueError(f"{text!r}: empty revision after '@'")
    if not path.strip("/"):
        raise ValueError(f"{text!r}: no repository path")
    return VcsRequirement(
        text=text,
        url=urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")),
        rev=rev,
        name=name or fragment.get("egg"),
        subdirectory=fragment.get("subdirectory"),
    )


def parse_vcs(text: str) -> VcsRequirement | None:
    """The VCS dependency `text` describes (bare or `name @ git+…`), or None for an index requirement."""
    if is_vcs_text(text):
        return parse_vcs_url(text.strip(), text)
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url and is_vcs_text(req.url):
        return parse_vcs_url(req.url, text, req.name)
    return None


def strip_credentials(url: str) -> str:
    """The URL without `user:secret@`: what locks and manifests record (credentials never reach a file)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def repository_key(url: str) -> str:
    """One spelling per repository: no credentials, no trailing `/` or `.git`."""
    return strip_credentials(url).rstrip("/").removesuffix(".git")


def _git(args: list[str], what: str, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}  # never wait for a password
    try:
        return run_captured(["git", *args], cwd=cwd, env=env, timeout=timeout)
    except NotRun as exc:
        if exc.timed_out:
            raise FetchError(f"{what}: git did not finish within {timeout}s") from None
        raise FetchError(f"{what}: git is not installed", hint="install git") from None


def _git_ok(args: list[str], what: str, timeout: float, cwd: Path | None = None) -> str:
    proc = _git(args, what, timeout, cwd)
    if proc.returncode != 0:
        raise FetchError(f"{what}: {output_tail(proc.stderr) or 'git failed'}")
    return proc.stdout.strip()


def _head_is(tree: Path, commit: str, timeout: float) -> bool:
    proc = _git(["rev-parse", "HEAD"], "checking a cached checkout", timeout, cwd=tree)
    return proc.returncode == 0 and proc.stdout.strip() == commit


def checkout(downloader: Downloader, url: str, commit: str) -> Path:
    """The tree of `url` at `commit`, from `<cache>/vcs/<sha1 of url>/<commit>` or fetched there atomically (git
    runs with the downloader's timeout; offline, only a cached checkout is found).

    `url` may carry credentials (from the config); they are used by git and never written down.
    """
    cache_root, timeout = downloader.cache.root, downloader.timeout
    shown = f"{strip_credentials(url)}@{commit[:12]}"
    what = f"fetching {shown}"
    base = cache_root / "vcs" / hashlib.sha1(repository_key(url).encode()).hexdigest()
    final = base / commit
    if final.is_dir():
        if _head_is(final, commit, timeout):
            return final
        discard(final, cache_root / "tmp", "vcs-damaged-")  # not the commit it claims: never trusted
    if downloader.offline:
        raise FetchError(f"offline, and the checkout of {shown} is not cached", hint="run the build once while online")
    tmp_root = cache_root / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with owned_dir(tmp_root, "vcs-") as staging:  # what a killed fetch left is swept by the next one
        tmp = staging / "checkout"
        _git_ok(["init", "-q", str(tmp)], what, timeout)
        shallow = _git(["fetch", "-q", "--depth", "1", url, commit], what, timeout, cwd=tmp)
        if shallow.returncode != 0:  # servers that refuse a fetch by commit id: fetch every branch and tag
            _git_ok(["fetch", "-q", "--tags", url, "+refs/heads/*:refs/remotes/origin/*"], what, timeout, cwd=tmp)
        _git_ok(["-c", "advice.detachedHead=false", "checkout", "-q", commit], what, timeout, cwd=tmp)
        if (tmp / ".gitmodules").is_file():
            _git_ok(["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"], what, timeout, cwd=tmp)
        if not _head_is(tmp, commit, timeout):
            raise FetchError(f"{what}: the checkout is not at the locked commit")
        publish_dir(tmp, final, lambda tree: _head_is(tree, commit, timeout))  # or another build's, at `commit`
    return final


def wheel_cache_dir(cache_root: Path, url: str, commit: str, build_key: Mapping[str, object]) -> Path:
    """Where the wheel built from `url`@`commit` for `build_key` (Python, platform, build settings) is kept."""
    key = json.dumps({"repo": repository_key(url), "commit": commit, **build_key}, sort_keys=True)
    return cache_root / "vcs-wheels" / hashlib.sha256(key.encode()).hexdigest()


def cached_wheel(directory: Path) -> Path | None:
    """The one wheel in a complete wheel-cache entry, or None."""
    wheels = sorted(directory.glob("*.whl")) if directory.is_dir() else []
    return wheels[0] if len(wheels) == 1 else None


def store_wheel(directory: Path, wheel: Path) -> Path:
    """Keep `wheel` as the entry `directory` (written beside, renamed into place); returns the cached wheel."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with owned_dir(directory.parent, ".part-") as staging:  # swept by the next store when a run was killed
        entry = staging / "entry"
        entry.mkdir()
        shutil.copyfile(wheel, entry / wheel.name)
        publish_dir(entry, directory, lambda found: cached_wheel(found) is not None)
    found = cached_wheel(directory)
    if found is None:
        raise BuildError(f"wheel cache entry {directory} is incomplete")
    return found


def is_pure(wheel: Path, python_version: str) -> bool:
    """The wheel installs on any platform for this Python (`py3-none-any` and the like)."""
    major, minor = major_minor(python_version)
    tags = parse_wheel_filename(wheel.name)[3]
    return any(
        t.abi == "none" and t.platform == "any" and t.interpreter in (f"py{major}", f"py{major}{minor}") for t in tags
    )


_REV_MISSING = re.compile(r"failed to (?:find branch, tag, or commit|fetch branch or tag|fetch commit) `([^`]+)`")


def git_failure(stderr: str, requirements: list[str]) -> str | None:
    """One line naming the git dependency uv could not fetch and why, or None when git was not the problem."""
    if "Git operation failed" not in stderr:
        return None
    found = [v for v in map(parse_vcs, requirements) if v is not None]
    missing = _REV_MISSING.search(stderr)

    def located(v: VcsRequirement) -> bool:
        parts = urllib.parse.urlsplit(v.url)
        return f"{parts.netloc.rsplit('@', 1)[-1]}{parts.path}" in stderr

    culprit = next((v for v in found if missing and v.rev == missing.group(1)), None)
    culprit = culprit or next((v for v in found if located(v)), None) or (found[0] if len(found) == 1 else None)
    where = strip_credentials(culprit.url) if culprit else "a git repository"
    if missing:
        why = f"revision {missing.group(1)!r} not found in {where}"
    else:
        fatal = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("fatal:")]
        why = f"cannot fetch {where}" + (f" ({redact(fatal[-1])})" if fatal else "")
    return f"git dependency {redact(culprit.text)!r}: {why}" if culprit else why


@dataclass(frozen=True)
class VcsPin:
    """A locked git source (PEP 751 `[packages.vcs]`): the repository and the commit its revision resolved to."""

    url: str  # without credentials
    commit: str
    requested_revision: str | None = None
    subdirectory: str | None = None

    def as_toml(self) -> dict[str, str]:
        table = {"type": "git", "url": strip_credentials(self.url)}
        if self.requested_revision:
            table["requested-revision"] = self.requested_revision
        table["commit-id"] = self.commit
        if self.subdirectory:
            table["subdirectory"] = self.subdirectory
        return table

    @classmethod
    def from_toml(cls, table: dict[str, str]) -> VcsPin:
        if table.get("type", "git") != "git":
            raise ValueError(f"vcs type {table.get('type')!r} is not supported (only git)")
        return cls(table["url"], table["commit-id"], table.get("requested-revision"), table.get("subdirectory"))
