"""One joint resolution per (runtime, platform), written as PEP 751 `pylock.<platform>.toml`."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from runenv.build.manifest import KeptEntry, SkippedEntry
from runenv.build.packages.distutils_shim import SHIM_REQUIREMENTS, shim_configured
from runenv.build.packages.fallbacks import kept_as_dependency, resolve_plan
from runenv.build.packages.lockcheck import check_locked_package, file_roots
from runenv.build.packages.resolve import ResolveRequest, index_args, name_vcs, uv_version
from runenv.build.packages.vcs import VcsPin
from runenv.compat import tomllib
from runenv.config.load import LoadedConfig
from runenv.credentials import machine_index_urls
from runenv.errors import FetchError, StepError
from runenv.fetch import Download
from runenv.files import write_text_atomic
from runenv.plan import RuntimePlan, build_plan
from runenv.platforms import get_platform
from runenv.redact import redact, register_url, strip_userinfo

ArtifactKind = Literal["wheel", "sdist", "vcs"]


@dataclass(frozen=True)
class LockedPackage:
    """One pinned distribution and the one artifact to install it from."""

    name: str
    version: str
    url: str
    sha256: str
    kind: ArtifactKind
    index: str | None = None
    dependencies: tuple[str, ...] = ()
    vcs: VcsPin | None = None  # kind "vcs": built from this commit (url is the repository, sha256 empty)

    @property
    def filename(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1])

    def download(self) -> Download:
        return Download(self.url, self.sha256, self.filename)


@dataclass(frozen=True)
class Lock:
    """A read lock file: what to install on one platform."""

    path: Path
    runtime: str
    platform: str
    python_version: str
    inputs_digest: str
    packages: list[LockedPackage]
    skipped: list[SkippedEntry] = field(default_factory=list)
    kept: list[KeptEntry] = field(default_factory=list)
    vcs_names: dict[str, str] = field(default_factory=dict)  # bare git requirement → its metadata's name

    def package(self, name: str) -> LockedPackage | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.packages if p.name == wanted), None)

    def downloads(self) -> list[Download]:
        return [p.download() for p in self.packages if p.kind != "vcs"]


@dataclass(frozen=True)
class LockResult:
    """The lock for one platform and whether it was (re)written or reused as fresh."""

    lock: Lock
    written: bool


def extra_requirements(loaded: LoadedConfig, plan: RuntimePlan) -> list[str]:
    """Requirements runenv adds on its own: setuptools and wheel for the distutils shim."""
    if not shim_configured(loaded.config, plan.python_version):
        return []
    present = {p.name for p in plan.packages} | set(plan.excluded)
    return [name for name in SHIM_REQUIREMENTS if name not in present]


def inputs_digest(loaded: LoadedConfig, plan: RuntimePlan) -> str:
    """sha256 over everything the resolution depends on: plan, extras and target.

    The uv version is recorded in the lock but not digested: upgrading uv must not make every
    committed lock stale (and fail `build --locked` in CI) when no input changed.
    """
    plan_json = {k: v for k, v in plan.as_json().items() if k not in ("configDigest", "copyFiles")}
    build = loaded.config.build
    data = {
        "plan": plan_json,
        "extra": extra_requirements(loaded, plan),
        "python": plan.python_version,
        "platform": plan.platform,
        "manylinux": build.manylinux,
        "macosx": build.macosx,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def pick_artifact(entry: dict[str, Any], no_binary: set[str]) -> tuple[str, str, ArtifactKind]:
    """The artifact to install: the first wheel uv listed for the target, else the sdist."""
    name = canonicalize_name(entry["name"])
    wheels = entry.get("wheels") or []
    if wheels and name not in no_binary:
        wheel = wheels[0]
        return wheel["url"], wheel["hashes"]["sha256"], "wheel"
    sdist = entry.get("sdist")
    if sdist is None:
        raise StepError(f"lock: no installable artifact for {name} {entry.get('version')}")
    return sdist["url"], sdist["hashes"]["sha256"], "sdist"


def _reachable(parents: dict[str, list[str]], no_deps: set[str]) -> set[str]:
    """Packages required by a root, not counting what noDeps packages require."""
    keep: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, via in parents.items():
            if name not in keep and any(p == "" or (p in keep and p not in no_deps) for p in via):
                keep.add(name)
                changed = True
    return keep


def _request(
    loaded: LoadedConfig, plan: RuntimePlan, roots: list[str], *, no_binary: list[str], excludes: list[str]
) -> ResolveRequest:
    build = loaded.config.build
    return ResolveRequest(
        requirements=roots,
        python_version=plan.python_version,
        platform=get_platform(plan.platform),
        manylinux=build.manylinux,
        macosx=build.macosx,
        index=index_args(plan.registries, plan.uses_machine_index),
        no_binary=no_binary,
        excludes=excludes,
        overrides=plan.overrides,
        timeout=build.timeout,
    )


def _named_plan(loaded: LoadedConfig, plan: RuntimePlan) -> tuple[RuntimePlan, dict[str, str]]:
    """The plan with bare git dependencies under the names their metadata declares (rules re-applied)."""
    bare = [p.requirement for p in plan.installable if p.vcs is not None and p.vcs.name is None]
    if not bare:
        return plan, {}
    learned = name_vcs(_request(loaded, plan, bare, no_binary=[], excludes=[]))
    names = {redact(text): name for text, name in learned.items()}
    return build_plan(loaded, plan.platform, vcs_names=names), names


def lock_runtime(
    loaded: LoadedConfig, plan: RuntimePlan, *, warn: Callable[[str], None] = lambda _m: None
) -> LockResult:
    """Resolve `plan` and write `pylock.<platform>.toml` next to the runtime's config (atomically)."""
    digest = inputs_digest(loaded, plan)  # of the configured plan: names learned from git metadata are an outcome
    plan, vcs_names = _named_plan(loaded, plan)
    outcome = resolve_plan(loaded, plan, extra_requirements(loaded, plan), warn)
    resolved, no_binary, skipped = outcome.resolved, outcome.no_binary, outcome.skipped
    no_deps = {p.name for p in plan.packages if p.no_deps}
    parents = dict(resolved.required_by)
    named = {p.requirement: p.name for p in plan.installable}  # a bare git requirement is named by its metadata
    for root in {named.get(r) or canonicalize_name(Requirement(r).name) for r in outcome.roots}:
        parents.setdefault(root, [])
        if "" not in parents[root]:
            parents[root].append("")
    keep = _reachable(parents, no_deps)
    kept = kept_as_dependency(plan, keep, parents)
    for entry in kept:
        warn(
            f"{entry.name}: skipped on {plan.platform} by config ({entry.reason}), but "
            f"{', '.join(entry.required_by)} require{'s' if len(entry.required_by) == 1 else ''} it; "
            "installed as a dependency"
        )
    children: dict[str, list[str]] = {}
    for name, via in parents.items():
        for parent in via:
            if parent and parent not in no_deps:
                children.setdefault(parent, []).append(name)

    entries = []
    for entry in resolved.pylock.get("packages", []):
        name = canonicalize_name(entry["name"])
        if name not in keep:
            continue
        out: dict[str, Any] = {"name": name, "version": entry["version"]}
        if resolved.index.get(name):
            out["index"] = strip_userinfo(resolved.index[name])
        deps = sorted(c for c in children.get(name, []) if c in keep)
        if deps:
            out["dependencies"] = [{"name": d} for d in deps]
        if entry.get("vcs"):
            out["vcs"] = VcsPin.from_toml(entry["vcs"]).as_toml()
            entries.append(out)
            continue
        url, sha, kind = pick_artifact(entry, no_binary)
        register_url(url)
        url = strip_userinfo(url)  # credentials come from the index settings at download time, never the lock
        artifact = {"url": url, "hashes": {"sha256": sha}}
        if kind == "wheel":
            out["wheels"] = [{"name": urllib.parse.unquote(url.rsplit("/", 1)[-1]), **artifact}]
        else:
            out["sdist"] = {"name": urllib.parse.unquote(url.rsplit("/", 1)[-1]), **artifact}
        entries.append(out)

    document = {
        "lock-version": "1.0",
        "created-by": "runenv",
        "requires-python": f"=={plan.python_version}",
        "packages": sorted(entries, key=lambda e: e["name"]),
        "tool": {
            "runenv": {
                "runtime": plan.runtime,
                "platform": plan.platform,
                "python": plan.python_version,
                "inputs-digest": digest,
                "uv": uv_version(),
                "skipped": [s.as_json() for s in skipped],
                "kept": [k.as_json() for k in kept],
                **({"vcs-names": dict(sorted(vcs_names.items()))} if vcs_names else {}),
            }
        },
    }
    path = loaded.runtime.lock_path(plan.platform)
    text = tomli_w.dumps(document)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):  # same content: the file stays untouched
        write_text_atomic(path, text)
    return LockResult(read_lock(path, file_indexes(plan)), written=True)


def _locked_package(entry: dict[str, Any]) -> LockedPackage:
    """One `[[packages]]` entry: its wheel, else its sdist, else its git source."""
    common = {
        "name": entry["name"],
        "version": entry["version"],
        "index": entry.get("index"),
        "dependencies": tuple(d["name"] for d in entry.get("dependencies", [])),
    }
    if "vcs" in entry:
        pin = VcsPin.from_toml(entry["vcs"])
        return LockedPackage(url=pin.url, sha256="", kind="vcs", vcs=pin, **common)
    wheels = entry.get("wheels") or []
    artifact, kind = (wheels[0], "wheel") if wheels else (entry["sdist"], "sdist")
    return LockedPackage(url=artifact["url"], sha256=artifact["hashes"]["sha256"], kind=kind, **common)  # type: ignore[arg-type]


def file_indexes(plan: RuntimePlan) -> tuple[str, ...]:
    """Where a lock of `plan` may name `file:` artifacts: below its `file:` indexes (configured or the machine's)."""
    machine = machine_index_urls() if plan.uses_machine_index else []
    return file_roots([*plan.registries, *machine])


def read_lock(path: Path, allowed_file_roots: tuple[str, ...] = ()) -> Lock:
    """Read a lock written by `lock_runtime`; a malformed file raises StepError naming it.

    Every entry is checked as untrusted input (lockcheck.py): a bad one is a ConfigError naming the entry.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        meta = data["tool"]["runenv"]
        packages = []
        for entry in data.get("packages", []):
            packages.append(_locked_package(entry))
            check_locked_package(packages[-1], path, allowed_file_roots, len(packages) - 1)
        skipped = [SkippedEntry(s["name"], s["reason"], s["platform"]) for s in meta.get("skipped", [])]
        kept = [KeptEntry(k["name"], k["reason"], k["platform"], tuple(k["required-by"])) for k in meta.get("kept", [])]
        return Lock(
            path,
            meta["runtime"],
            meta["platform"],
            meta["python"],
            meta["inputs-digest"],
            packages,
            skipped,
            kept,
            dict(meta.get("vcs-names", {})),
        )
    except FileNotFoundError:
        raise StepError(f"{path}: lock file not found", hint="run `runenv lock`") from None
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, IndexError, ValueError) as exc:
        raise StepError(
            f"{path}: not a runenv lock file ({type(exc).__name__}: {exc})", hint="re-run `runenv lock`"
        ) from None


def lock_is_fresh(loaded: LoadedConfig, plan: RuntimePlan) -> bool:
    """True when the platform's lock exists and was made from the same inputs."""
    path = loaded.runtime.lock_path(plan.platform)
    if not path.is_file():
        return False
    try:
        return read_lock(path, file_indexes(plan)).inputs_digest == inputs_digest(loaded, plan)
    except StepError:
        return False


def ensure_lock(
    loaded: LoadedConfig,
    plan: RuntimePlan,
    *,
    locked: bool = False,
    offline: bool = False,
    warn: Callable[[str], None] = lambda _m: None,
) -> LockResult:
    """Reuse a fresh lock, re-lock a stale one; with `locked` (or `offline`) a stale or missing lock is an error."""
    path = loaded.runtime.lock_path(plan.platform)
    current = None
    if path.is_file():
        try:
            current = read_lock(path, file_indexes(plan))
        except StepError:
            current = None  # unreadable: treated as stale
    if current is not None and current.inputs_digest == inputs_digest(loaded, plan):
        return LockResult(current, written=False)
    state = "stale" if path.is_file() else "missing"
    if offline and not locked:
        raise FetchError(
            f"offline, and the lock of runtime {plan.runtime} for {plan.platform} is {state}",
            hint=f"run `runenv lock {plan.runtime} --platform {plan.platform}` while online",
        )
    if locked:
        raise StepError(
            f"{path}: lock is {state} for runtime {plan.runtime} on {plan.platform}",
            hint=f"run `runenv lock {plan.runtime} --platform {plan.platform}` and commit it",
        )
    return lock_runtime(loaded, plan, warn=warn)
