"""The dependency closure of an installed runtime: every distribution's requirements (markers evaluated for the
target, extras followed) are installed in a fitting version.

It reads what is installed (`*.dist-info/METADATA`), not the lock, so it also catches a wheel installed without
its dependencies. Markers are evaluated with the target's `Platform.marker_environment`.
"""

from __future__ import annotations

from collections.abc import Collection

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from runenv.build.verify.discovery import Distribution
from runenv.build.verify.report import Failure
from runenv.platforms import Platform


def _applies(requirement: Requirement, env: dict[str, str], extras: Collection[str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))
    except (InvalidMarker, UndefinedEnvironmentName):
        return True  # a marker this check cannot judge: ask for the requirement rather than hide it


def check_closure(
    dists: list[Distribution],
    platform: Platform,
    python_version: str,
    *,
    skipped: dict[str, str] | None = None,
    no_deps: Collection[str] = (),
) -> tuple[list[Failure], int]:
    """Failures for requirements that are missing or in the wrong version, and how many requirements were checked.

    Requirements on packages the build left out on purpose (`skipped`: name → reason), and those of distributions
    installed without their dependencies (`no_deps`), are not failures.
    """
    env = platform.marker_environment(python_version)
    installed = {d.name: d for d in dists}
    extras: dict[str, set[str]] = {d.name: set() for d in dists}
    skipped = skipped or {}
    exempt = {canonicalize_name(n) for n in no_deps}
    parsed: dict[str, list[Requirement]] = {}
    failures: dict[tuple[str, str], Failure] = {}
    for dist in dists:
        reqs = []
        for text in dist.requires:
            try:
                reqs.append(Requirement(text))
            except InvalidRequirement as exc:
                failures[dist.name, text] = _failure(dist.name, text, f"unreadable requirement {text!r}: {exc}")
        parsed[dist.name] = reqs
    checked = 0
    pending = [d.name for d in dists]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:  # extras asked for by one distribution add requirements to another: go round until none do
        name = pending.pop()
        key = (name, frozenset(extras[name]))
        if key in seen or name in exempt:
            continue
        seen.add(key)
        for req in parsed[name]:
            if not _applies(req, env, extras[name]):
                continue
            checked += 1
            wanted = canonicalize_name(req.name)
            target = installed.get(wanted)
            if target is None:
                if wanted not in skipped:
                    failures[name, wanted] = _failure(
                        name, wanted, f"requires {str(req)!r} on {platform.key}, but {wanted} is not installed"
                    )
                continue
            if req.specifier and not _satisfies(req, target.version):
                failures[name, wanted] = _failure(
                    name, wanted, f"requires {str(req)!r}, but {wanted} {target.version} is installed"
                )
            asked = {canonicalize_name(e) for e in req.extras}
            if asked - extras[wanted]:
                extras[wanted] |= asked
                pending.append(wanted)
    return sorted(failures.values(), key=lambda f: (f.distribution, f.module)), checked


def _satisfies(requirement: Requirement, version: str) -> bool:
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return requirement.specifier.contains(version, prereleases=True)


def _failure(distribution: str, required: str, error: str) -> Failure:
    return Failure(distribution, required, "closure", error, error, None, "closure")
