"""Resolving a plan under its fallback policy: a package without a fitting wheel makes the direct
dependency that needs it fall back (its subtree from source, the direct dependency skipped, or an error)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from runenv.build.manifest import KeptEntry, SkippedEntry
from runenv.build.packages.resolve import NoFittingWheel, Resolved, ResolveRequest, resolve
from runenv.config.load import LoadedConfig
from runenv.errors import StepError
from runenv.plan import Fallback, RuntimePlan, dependency_fallback
from runenv.platforms import get_platform


@dataclass(frozen=True)
class Resolution:
    """uv's successful answer and what the fallbacks changed on the way."""

    resolved: Resolved
    no_binary: set[str]  # packages locked from their sdist
    skipped: list[SkippedEntry]  # direct dependencies the fallback dropped
    roots: list[str]  # the requirements finally resolved


@dataclass
class _Attempt:
    """What the next resolution is made of; each round of fallbacks changes it."""

    loaded: LoadedConfig
    plan: RuntimePlan
    extra: list[str]  # requirements runenv adds itself (distutils shim)
    no_binary: set[str]
    excludes: set[str]
    dropped: dict[str, str] = field(default_factory=dict)  # direct dependency -> reason

    @property
    def roots(self) -> dict[str, str]:
        """name -> requirement of everything resolved as a root."""
        out = {p.name: p.requirement for p in self.plan.installable if p.name not in self.dropped}
        out.update({canonicalize_name(Requirement(r).name): r for r in self.extra})
        return out

    def request(self, requirements: list[str], no_binary: set[str] | None = None) -> ResolveRequest:
        build = self.loaded.config.build
        return ResolveRequest(
            requirements=requirements,
            python_version=self.plan.python_version,
            platform=get_platform(self.plan.platform),
            manylinux=build.manylinux,
            macosx=build.macosx,
            index=self.plan.index_options(),
            origins=self.plan.registry_origins,
            no_binary=sorted(self.no_binary if no_binary is None else no_binary),
            excludes=sorted(self.excludes),
            overrides=self.plan.overrides,
            timeout=build.timeout,
        )

    def fallback(self, name: str) -> Fallback:
        planned = self.plan.package(name)
        if planned is not None and planned.fallback is not None:
            return planned.fallback
        return dependency_fallback(self.loaded, self.plan.platform, name)


def _descendants(parents: dict[str, list[str]], root: str, no_deps: set[str]) -> set[str]:
    """Everything `root` pulls in, per uv's `# via` graph (nothing below a noDeps package)."""
    children: dict[str, set[str]] = {}
    for name, via in parents.items():
        for parent in via:
            children.setdefault(parent, set()).add(name)
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in no_deps and name != root:
            continue
        for child in children.get(name, ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _needers_from_graph(attempt: _Attempt, missing: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """Which roots pull in each missing package, from a resolution that lets the missing ones build.

    Returns (missing name -> roots, every missing name found on the way), or None when even with
    sdists allowed uv cannot resolve (no sdist either): then `_needers_alone` asks root by root.
    """
    allowed = list(missing)
    for _ in range(len(attempt.roots) + 5):
        try:
            resolved = resolve(attempt.request(list(attempt.roots.values()), attempt.no_binary | set(allowed)))
        except NoFittingWheel as more:
            new = [n for n in more.names if n not in allowed and n not in attempt.no_binary]
            if not new:
                return None
            allowed += new
            continue
        except StepError:
            return None
        no_deps = {p.name for p in attempt.plan.packages if p.no_deps}
        below = {root: _descendants(resolved.required_by, root, no_deps | {root}) for root in attempt.roots}
        return {name: [r for r, under in below.items() if name in under] for name in allowed}, allowed
    return None


def _needers_alone(attempt: _Attempt, missing: list[str]) -> dict[str, list[str]]:
    """Which roots need each missing package: the roots that fail on it when resolved alone."""

    def fails_on(requirement: str) -> set[str]:
        try:
            resolve(attempt.request([requirement]))
        except NoFittingWheel as found:
            return set(found.names)
        except StepError:
            return set()
        return set()

    roots = attempt.roots
    with ThreadPoolExecutor(max_workers=4) as pool:
        failing = dict(zip(roots, pool.map(fails_on, roots.values()), strict=True))
    return {name: [r for r, names in failing.items() if name in names] for name in missing}


def _where(plan: RuntimePlan) -> str:
    return f"{plan.platform} (Python {plan.python_version}) for runtime {plan.runtime}"


def _direct_without_wheel(attempt: _Attempt, name: str, warn: Callable[[str], None]) -> None:
    plan = attempt.plan
    decision = attempt.fallback(name)
    if decision == "error":
        raise StepError(
            f"no wheel of {name} fits {_where(plan)}",
            hint="allow building it (packages.resolution.allowSourceList) or skip it on this platform",
        )
    if decision == "source":
        attempt.no_binary.add(name)
        return
    reason = f"no wheel for {plan.platform}"
    warn(f"{name}: {reason}; skipped in runtime {plan.runtime}")
    attempt.dropped[name] = reason


def _dependency_without_wheel(attempt: _Attempt, name: str, needers: list[str], warn: Callable[[str], None]) -> None:
    """`name` (not a root) has no wheel: the roots that need it fall back."""
    plan = attempt.plan
    if name not in plan.only_binary and attempt.fallback(name) == "source":
        attempt.no_binary.add(name)  # allowSourceAll, or the dependency is in allowSourceList itself
        return
    no_deps = {p.name for p in plan.packages if p.no_deps}
    if needers and all(n in no_deps for n in needers):
        attempt.excludes.add(name)  # only noDeps packages want it, and their dependencies are not installed
        return
    if not needers:
        raise StepError(f"no wheel of {name} fits {_where(plan)}, and no direct dependency was found to need it")
    decisions = {n: attempt.fallback(n) for n in needers}
    if name not in plan.only_binary and "source" in decisions.values():
        attempt.no_binary.add(name)  # covered by a source fallback; every needer is then satisfied
        return
    refused = [n for n, d in decisions.items() if d != "skip"]
    if refused:
        why = "it is in packages.resolution.onlyBinaryList" if name in plan.only_binary else "no wheel fits"
        raise StepError(
            f"{refused[0]} needs {name}, and {why} on {_where(plan)}",
            hint=f"allow building {refused[0]}'s dependencies from source (packages.resolution.allowSourceList) "
            f"or skip {refused[0]} on this platform",
        )
    for needer in needers:
        reason = f"needs {name}, which has no wheel for {plan.platform}"
        warn(f"{needer}: {reason}; skipped in runtime {plan.runtime}")
        attempt.dropped[needer] = reason


def resolve_plan(loaded: LoadedConfig, plan: RuntimePlan, extra: list[str], warn: Callable[[str], None]) -> Resolution:
    """Resolve wheel-only; each missing wheel makes the direct dependency behind it fall back, until uv succeeds."""
    attempt = _Attempt(loaded, plan, extra, set(plan.no_binary), set(plan.excluded))
    for _ in range(2 * len(attempt.roots) + 10):
        roots = attempt.roots
        try:
            resolved = resolve(attempt.request(list(roots.values())))
        except NoFittingWheel as missing:
            names = [n for n in missing.names if n not in attempt.no_binary and n not in attempt.excludes]
            if not names:
                raise StepError(
                    f"cannot resolve runtime {plan.runtime} for {plan.platform}: {missing.detail}"
                ) from None
            direct = [n for n in names if n in roots]
            for name in direct:
                _direct_without_wheel(attempt, name, warn)
            others = [n for n in names if n not in roots]
            if others:
                found = _needers_from_graph(attempt, others)
                needers = found[0] if found else _needers_alone(attempt, others)
                for name, who in needers.items():
                    if name in attempt.roots:
                        _direct_without_wheel(attempt, name, warn)
                    else:
                        _dependency_without_wheel(attempt, name, [w for w in who if w in attempt.roots], warn)
            continue
        skipped = [SkippedEntry(n, reason, plan.platform) for n, reason in attempt.dropped.items()]
        return Resolution(resolved, attempt.no_binary, skipped, list(roots.values()))
    raise StepError(f"cannot resolve runtime {plan.runtime} for {plan.platform}: the fallbacks do not converge")


def kept_as_dependency(plan: RuntimePlan, installed: set[str], parents: dict[str, list[str]]) -> list[KeptEntry]:
    """Packages a skip rule names that are installed anyway because a kept package requires them."""
    kept = []
    for name, reason in sorted(plan.skip_rules.items()):
        required_by = sorted(p for p in parents.get(name, []) if p and p in installed)
        if name in installed and required_by:
            kept.append(KeptEntry(name, reason or "skipped by config", plan.platform, tuple(required_by)))
    return kept
