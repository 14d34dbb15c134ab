"""The CI fan-out: which (runtime, platform) needs a native runner, and cross-assembly jobs for the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from packaging.requirements import Requirement

from runenv.build.packages.lock import read_lock
from runenv.config.load import LoadedConfig
from runenv.plan import build_plan

# GitHub-hosted runner labels per platform; `build.runners` overrides them. macos-13 is the last
# Intel macOS image, ubuntu-24.04-arm the hosted Linux ARM64 one.
DEFAULT_RUNNERS: dict[str, str] = {
    "linux-x64": "ubuntu-latest",
    "linux-aarch64": "ubuntu-24.04-arm",
    "macosx-x64": "macos-13",
    "macosx-aarch64": "macos-15",
    "windows-x64": "windows-latest",
}
CROSS_HOST = "linux-x64"  # cross-assembly runs on this platform's runner

JobKind = Literal["native", "cross"]


@dataclass(frozen=True)
class Job:
    """One CI job: a runtime built for some platforms on one runner."""

    runtime: str
    platforms: tuple[str, ...]
    runner: str
    kind: JobKind
    reasons: tuple[str, ...] = ()  # why a native job is native

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.platforms[0] if self.kind == 'native' else 'cross'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "platforms": list(self.platforms),
            "platformArgs": " ".join(f"--platform {p}" for p in self.platforms),
            "runner": self.runner,
            "kind": self.kind,
            "artifact": "dist-" + self.name.replace(" ", "-"),
            "reasons": list(self.reasons),
        }


def _is_vcs_or_local(requirement: str) -> bool:
    """A direct URL that is not a wheel (git+…, a source archive, a path): built from source."""
    url = Requirement(requirement).url
    return url is not None and not url.split("#", 1)[0].endswith(".whl")


def native_reasons(loaded: LoadedConfig, platform: str) -> list[str]:
    """Why (runtime, platform) must be built on a runner of that platform; empty when cross-assembly works.

    From the plan (source, build-wheel, direct-URL requirements), the platform's lock if one exists
    (any sdist in it), a beforePack hook, and `build.native`.
    """
    build = loaded.config.build
    reasons = []
    if platform in build.native:
        reasons.append("listed in build.native")
    if build.hooks.before_pack_for(platform) is not None:
        reasons.append("build.hooks.beforePack runs there")
    for package in build_plan(loaded, platform).installable:
        if package.action in ("source", "build-wheel"):
            reasons.append(f"{package.name}: {package.action}")
        elif _is_vcs_or_local(package.requirement):
            reasons.append(f"{package.name}: direct URL (built from source)")
    lock_path = loaded.runtime.lock_path(platform)
    if lock_path.is_file():
        listed = {r.split(":", 1)[0] for r in reasons}
        reasons += [
            f"{p.name}: sdist in {lock_path.name}"
            for p in read_lock(lock_path).packages
            if p.kind == "sdist" and p.name not in listed
        ]
    return reasons


def runner_for(loaded: LoadedConfig, platform: str) -> str:
    return loaded.config.build.runners.get(platform) or DEFAULT_RUNNERS[platform]  # type: ignore[call-overload]


def runtime_jobs(loaded: LoadedConfig) -> list[Job]:
    """The runtime's native jobs (one per platform that needs one), then one cross job for all the others."""
    native: list[Job] = []
    cross: list[str] = []
    for platform in loaded.config.build.platforms:
        reasons = native_reasons(loaded, platform)
        if reasons:
            job = Job(loaded.runtime.name, (platform,), runner_for(loaded, platform), "native", tuple(reasons))
            native.append(job)
        else:
            cross.append(platform)
    if cross:
        native.append(Job(loaded.runtime.name, tuple(cross), runner_for(loaded, CROSS_HOST), "cross"))
    return native


def github_matrix(jobs: list[Job]) -> dict[str, Any]:
    """The value `strategy.matrix: ${{ fromJSON(…) }}` takes."""
    return {"include": [job.as_json() for job in jobs]}


def render_table(jobs: list[Job]) -> str:
    """One row per job: kind, runtime, runner, platforms, why native."""
    rows = [("KIND", "RUNTIME", "RUNNER", "PLATFORMS", "WHY")]
    rows += [(j.kind, j.runtime, j.runner, ",".join(j.platforms), "; ".join(j.reasons)) for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]).rstrip()
        for row in rows
    )
