"""The dependency closure of an installed set: every distribution's requirements are present (ARCHITECTURE §4)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from runenv.errors import StepError
from runenv.plan import RuntimePlan


@dataclass(frozen=True)
class Distribution:
    """One installed (or shipped) distribution and its Requires-Dist."""

    name: str  # PEP 503 normalised
    version: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    """`distribution` requires `requirement`, which the set does not satisfy (`found`: the version present)."""

    distribution: str
    version: str
    requirement: str
    found: str | None = None

    def describe(self) -> str:
        present = f"{self.found} is installed" if self.found else "it is not installed"
        return f"{self.distribution} {self.version} requires {self.requirement}, but {present}"


def _applies(req: Requirement, environment: dict[str, str], extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**environment, "extra": extra}) for extra in ("", *sorted(extras)))


def _satisfied(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # a version packaging cannot read: presence is all that can be checked


def missing_requirements(
    distributions: Iterable[Distribution],
    roots: Iterable[str],
    environment: dict[str, str],
    *,
    no_deps: Iterable[str] = (),
) -> list[Violation]:
    """Requirements of `distributions` not met by the set itself, markers evaluated in `environment`.

    `roots` are the requirements the set was made from (they say which extras are wanted); the
    requirements of `no_deps` distributions are not checked (they are installed without them).
    """
    dists = {d.name: d for d in distributions}
    skip = {canonicalize_name(n) for n in no_deps}
    wanted: dict[str, set[str]] = {name: set() for name in dists}
    for text in roots:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # a bare git URL: no extras to want
        wanted.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    parsed: dict[str, list[Requirement]] = {}
    for dist in dists.values():
        reqs = []
        for text in dist.requires:
            try:
                reqs.append(Requirement(text))
            except InvalidRequirement:
                continue  # not ours to judge; the installer accepted the wheel
        parsed[dist.name] = reqs
    changed = True
    while changed:  # extras asked of a dependency can switch on more of its requirements
        changed = False
        for name, reqs in parsed.items():
            if name in skip:
                continue
            for req in reqs:
                dep = canonicalize_name(req.name)
                if _applies(req, environment, wanted[name]) and not req.extras <= wanted.setdefault(dep, set()):
                    wanted[dep] |= req.extras
                    changed = True
    violations = []
    for name in sorted(parsed):
        if name in skip:
            continue
        dist = dists[name]
        for req in parsed[name]:
            if not _applies(req, environment, wanted[name]):
                continue
            present = dists.get(canonicalize_name(req.name))
            if present is None or not _satisfied(req, present.version):
                violations.append(Violation(name, dist.version, str(req), present.version if present else None))
    return violations


def installed_distributions(site_packages: Path | Sequence[Path]) -> list[Distribution]:
    """The distributions installed in `site_packages` (one directory or several: their `.dist-info` metadata)."""
    dirs = [site_packages] if isinstance(site_packages, Path) else site_packages
    out = []
    for dist in importlib.metadata.distributions(path=[str(d) for d in dirs]):
        name = dist.metadata["Name"]
        if name:
            out.append(Distribution(canonicalize_name(name), dist.version, tuple(dist.requires or ())))
    return out


def check_closure(
    site_packages: Path | Sequence[Path],
    plan: RuntimePlan,
    environment: dict[str, str],
    shipped: list[Distribution],
    *,
    excluded_only: bool = False,
) -> None:
    """Every distribution installed in `site_packages` (one or several directories, or `shipped` as an sdist)
    has its requirements there.

    With `excluded_only`, only requirements that a hard exclusion (`packages.exclude`) keeps out are
    checked: verification's closure check, which honours `checks/<platform>.json`, judges the rest.
    """
    roots = [p.requirement for p in plan.installable]
    no_deps = [p.name for p in plan.packages if p.no_deps]
    found = missing_requirements(
        [*installed_distributions(site_packages), *shipped], roots, environment, no_deps=no_deps
    )
    if excluded_only:
        found = [v for v in found if canonicalize_name(Requirement(v.requirement).name) in plan.excluded]
    if not found:
        return
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    name = canonicalize_name(Requirement(first.requirement).name)
    hint = f"packages.exclude.{name}.{plan.platform} removes it" if name in plan.excluded else None
    raise StepError(
        f"runtime {plan.runtime} on {plan.platform} is incomplete: {first.describe()}{more}",
        hint=hint or "add the requirement to packages.dependencies, or skip the package that needs it",
    )
