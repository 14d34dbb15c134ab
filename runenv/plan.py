"""Per (runtime, platform): the final package list with one action per package (ARCHITECTURE §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from runenv.build.packages.resolve import index_args
from runenv.build.packages.vcs import VcsRequirement, parse_vcs, strip_credentials
from runenv.config.load import LoadedConfig
from runenv.config.models import BuildWheelSpec, CopyFile, ResolutionPolicy
from runenv.errors import ConfigError
from runenv.platforms import PlatformKey, get_platform, host_platform_key
from runenv.redact import redact

Action = Literal["wheel", "source", "build-wheel", "skip"]
Fallback = Literal["source", "error", "skip"]


@dataclass(frozen=True)
class PlannedPackage:
    """One requirement of the runtime on one platform and what to do with it."""

    name: str  # PEP 503 normalised
    requirement: str  # PEP 508, after overrides
    action: Action
    fallback: Fallback | None = None  # only for action "wheel"
    reason: str | None = None
    no_deps: bool = False
    build_wheel: BuildWheelSpec | None = None
    vcs: VcsRequirement | None = None  # a git dependency, built from its checkout

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "requirement": redact(self.requirement),
            "action": self.action,
            "fallback": self.fallback,
            "reason": self.reason,
        }
        if self.no_deps:
            out["noDeps"] = True
        if self.build_wheel is not None:
            out["buildWheel"] = self.build_wheel.model_dump(mode="json", by_alias=True)
        if self.vcs is not None:
            out["vcs"] = {"url": strip_credentials(self.vcs.url), "revision": self.vcs.rev}
        return out


@dataclass(frozen=True)
class RuntimePlan:
    """Everything later stages need for one runtime on one platform; built once, read everywhere."""

    runtime: str
    python_version: str
    platform: str
    registries: list[str]  # explicit index URLs in order: registries.default, then additional
    uses_machine_index: bool  # registries.default empty: the index uv/pip are configured for comes last
    packages: list[PlannedPackage]
    # packages.exclude: never installed, not even as a dependency (name -> reason)
    excluded: dict[str, str | None] = field(default_factory=dict)
    # skip rules on this platform, direct dependency or not: a kept package that needs one still gets it
    skip_rules: dict[str, str | None] = field(default_factory=dict)
    no_binary: list[str] = field(default_factory=list)  # built from source (direct source actions, buildWheel, list)
    only_binary: list[str] = field(default_factory=list)  # never built from source, wherever they appear
    build_wheels: dict[str, BuildWheelSpec] = field(default_factory=dict)  # buildWheel specs, wherever they appear
    overrides: list[str] = field(default_factory=list)  # pins for packages that are not direct dependencies
    copy_files: list[CopyFile] = field(default_factory=list)
    config_digest: str = ""
    index_strategy: str = "best-match"  # registries.indexStrategy
    registry_origins: dict[str, str] = field(default_factory=dict)  # index URL -> config file and key (not digested)

    def package(self, name: str) -> PlannedPackage | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.packages if p.name == wanted), None)

    def build_spec(self, name: str) -> BuildWheelSpec | None:
        """How to build `name` from its sdist on this platform (buildWheel), direct dependency or not."""
        return self.build_wheels.get(canonicalize_name(name))

    def index_options(self) -> list[str]:
        """uv's index options for this plan's registries and strategy."""
        return index_args(self.registries, self.uses_machine_index, self.index_strategy)

    @property
    def installable(self) -> list[PlannedPackage]:
        return [p for p in self.packages if p.action != "skip"]

    def as_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "python": self.python_version,
            "platform": self.platform,
            "registries": [redact(url) for url in self.registries],
            "usesMachineIndex": self.uses_machine_index,
            "indexStrategy": self.index_strategy,
            "packages": [p.as_json() for p in self.packages],
            "excluded": [{"name": n, "reason": r} for n, r in sorted(self.excluded.items())],
            "skipRules": [{"name": n, "reason": r} for n, r in sorted(self.skip_rules.items())],
            "noBinary": self.no_binary,
            "onlyBinary": self.only_binary,
            "overrides": self.overrides,
            "copyFiles": [c.model_dump(mode="json", by_alias=True) for c in self.copy_files],
            "configDigest": self.config_digest,
        }


def _effective_policy(base: ResolutionPolicy, extra: ResolutionPolicy) -> ResolutionPolicy:
    """The platform block's policy over the package-level one: flags set there win, lists add up."""
    lists = {
        "allow_source_list": list(dict.fromkeys([*base.allow_source_list, *extra.allow_source_list])),
        "force_no_binary_list": list(dict.fromkeys([*base.force_no_binary_list, *extra.force_no_binary_list])),
        "only_binary_list": list(dict.fromkeys([*base.only_binary_list, *extra.only_binary_list])),
    }
    flags: dict[str, Any] = {
        k: getattr(extra, k) for k in ("allow_source_all", "strict_missing") if k in extra.model_fields_set
    }
    return base.model_copy(update={**lists, **flags})


def _apply_override(req: Requirement, overrides: dict[str, str]) -> str:
    value = overrides.get(canonicalize_name(req.name))
    if value is not None:
        req.specifier = SpecifierSet(value if value[:1] in "=!<>~" else f"=={value}")
    return str(req)


def _rules(loaded: LoadedConfig, platform: PlatformKey) -> dict[str, dict[str, tuple[str, str | None]]]:
    """name -> {rule path: (action, reason)} for every per-platform rule naming `platform`."""
    pkgs = loaded.config.packages
    found: dict[str, dict[str, tuple[str, str | None]]] = {}

    def add(name: str, where: str, action: str, reason: str | None) -> None:
        found.setdefault(name, {})[where] = (action, reason)

    for name, skip_reasons in pkgs.skip.items():
        if platform in skip_reasons:
            add(name, f"packages.skip.{name}.{platform}", "skip", skip_reasons[platform])
    for name, exclude_reasons in pkgs.exclude.items():
        if platform in exclude_reasons:
            add(name, f"packages.exclude.{name}.{platform}", "skip", exclude_reasons[platform])
    for name, source_reasons in pkgs.force_source.items():
        if platform in source_reasons:
            add(name, f"packages.forceSource.{name}.{platform}", "source", source_reasons[platform])
    for name, package_rules in pkgs.platform_specific.package_rules().items():
        rule = package_rules.get(platform)
        if rule is not None:
            action = "skip" if rule.action == "skip" else "source"
            add(name, f"packages.platformSpecific.{name}.{platform}", action, rule.reason)
    for name, specs in pkgs.build_wheel.items():
        if platform in specs:
            add(name, f"packages.buildWheel.{name}.{platform}", "build-wheel", specs[platform].reason)
    return found


def _decide(
    name: str, rules: dict[str, tuple[str, str | None]], policy: ResolutionPolicy, origin: str, platform: str
) -> tuple[Action, str | None]:
    actions = {action for action, _ in rules.values()}
    if name in policy.only_binary_list:
        if "source" in actions or name in policy.force_no_binary_list:
            where = [w for w, (a, _) in rules.items() if a == "source"] or ["packages.resolution.forceNoBinaryList"]
            raise ConfigError(
                f"{origin}: {name} on {platform} is in packages.resolution.onlyBinaryList and forced to "
                f"build from source by {where[0]}",
                hint="remove one of the two rules",
            )
    if len(actions) > 1:
        paths = " and ".join(sorted(rules))
        raise ConfigError(
            f"{origin}: conflicting rules for {name} on {platform}: {paths} name different actions",
            hint="keep one rule per package and platform",
        )
    for action in ("skip", "build-wheel", "source"):
        reasons = [reason for a, reason in rules.values() if a == action]
        if reasons:
            return action, next((r for r in reasons if r), None)
    if name in policy.force_no_binary_list:
        return "source", "in packages.resolution.forceNoBinaryList"
    return "wheel", None


def _fallback(name: str, policy: ResolutionPolicy) -> Fallback:
    if name not in policy.only_binary_list and (policy.allow_source_all or name in policy.allow_source_list):
        return "source"
    return "error" if policy.strict_missing else "skip"


def _requirement(
    text: str, overrides: dict[str, str], vcs_names: Mapping[str, str], where: str
) -> tuple[str, str, VcsRequirement | None]:
    """(name, requirement after overrides, git source) of one configured dependency."""
    vcs = parse_vcs(text)
    if vcs is None:
        req = Requirement(text)
        return canonicalize_name(req.name), _apply_override(req, overrides), None
    name = canonicalize_name(vcs_names.get(redact(text)) or vcs.plan_name)
    if name in overrides or vcs.plan_name in overrides:
        raise ConfigError(
            f"{where}: packages.overrides.{name} names the git dependency {redact(text)!r}",
            hint="change the revision after '@' instead",
        )
    return name, text, vcs


def build_plan(loaded: LoadedConfig, platform: str, vcs_names: Mapping[str, str] | None = None) -> RuntimePlan:
    """The plan for `loaded`'s runtime on `platform`; conflicting rules raise ConfigError.

    `vcs_names` maps a bare git dependency (as written, credentials redacted) to the name its metadata
    declares (learned when locking); without it the repository's name stands in.
    """
    key = get_platform(platform).key
    cfg = loaded.config
    pkgs = cfg.packages
    origin = f"runtime {loaded.runtime.name}"
    block = pkgs.platform_specific.block(platform)
    policy = _effective_policy(pkgs.resolution, block.resolution)
    rules = _rules(loaded, key)

    requirements: dict[str, tuple[str, VcsRequirement | None]] = {}
    for where, reqs in (
        ("packages.dependencies", pkgs.dependencies),
        (f"packages.platformSpecific.{platform}.dependencies", block.dependencies),
    ):
        seen: dict[str, str] = {}
        for text in reqs:
            name, requirement, vcs = _requirement(text, pkgs.overrides, vcs_names or {}, f"{origin}: {where}")
            if name in seen and seen[name] != text:
                raise ConfigError(
                    f"{origin}: {where} lists {name} twice ({redact(seen[name])!r} and {redact(text)!r})",
                    hint="keep one requirement per package",
                )
            seen[name] = text
            requirements[name] = (requirement, vcs)  # platform block replaces

    packages = []
    for name, (requirement, vcs) in requirements.items():
        aliases = [vcs.plan_name, name] if vcs else [name]  # a bare git dependency answers to both names
        named = {where: rule for alias in aliases for where, rule in rules.get(alias, {}).items()}
        action, reason = _decide(name, named, policy, origin, platform)
        if vcs is not None and action in ("wheel", "source"):
            if name in policy.only_binary_list:
                raise ConfigError(
                    f"{origin}: {name} on {platform} is a git dependency (built from its checkout) "
                    "and in packages.resolution.onlyBinaryList",
                    hint="remove it from onlyBinaryList",
                )
            action = "source"
        specs = [pkgs.build_wheel.get(alias, {}).get(key) for alias in aliases]
        spec = next((s for s in specs if s), None) if action == "build-wheel" else None
        packages.append(
            PlannedPackage(
                name=name,
                requirement=requirement,
                action=action,
                fallback=_fallback(name, policy) if action == "wheel" else None,
                reason=reason,
                no_deps=any(alias in pkgs.no_deps for alias in aliases),
                build_wheel=spec,
                vcs=vcs,
            )
        )

    # Actions act on direct dependencies only (as in the seed system); every rule is still checked
    # for conflicts. Hard exclusions and the resolution lists act wherever a package appears.
    decided = {name: _decide(name, named, policy, origin, platform) for name, named in sorted(rules.items())}
    excluded: dict[str, str | None] = {name: per[key] for name, per in pkgs.exclude.items() if key in per}
    skip_rules = {n: reason for n, (action, reason) in decided.items() if action == "skip" and n not in excluded}
    build_wheels = {name: per[key] for name, per in pkgs.build_wheel.items() if key in per}
    no_binary = [p.name for p in packages if p.action in ("source", "build-wheel")]
    no_binary += [n for n in build_wheels if n not in requirements]
    no_binary += [n for n in policy.force_no_binary_list if n not in no_binary and n not in excluded]
    no_binary += [p.name for p in packages if p.vcs and p.action != "skip" and p.name not in no_binary]
    overrides = [
        f"{name}{value if value[:1] in '=!<>~' else '==' + value}"
        for name, value in pkgs.overrides.items()
        if name not in requirements
    ]
    return RuntimePlan(
        runtime=loaded.runtime.name,
        python_version=loaded.runtime.version,
        platform=platform,
        registries=[*cfg.registries.default, *cfg.registries.additional],
        uses_machine_index=not cfg.registries.default,
        packages=packages,
        excluded=excluded,
        skip_rules=skip_rules,
        no_binary=no_binary,
        only_binary=[n for n in policy.only_binary_list if n not in excluded],
        build_wheels=build_wheels,
        overrides=overrides,
        copy_files=[*pkgs.copy_files, *(c for c in block.copy_files if c not in pkgs.copy_files)],
        config_digest=loaded.digest,
        index_strategy=cfg.registries.index_strategy,
        registry_origins=dict(loaded.registry_origins),
    )


def dependency_fallback(loaded: LoadedConfig, platform: str, name: str) -> Fallback:
    """The policy's own answer for `name` without a wheel: `source` when a list or allowSourceAll allows it."""
    pkgs = loaded.config.packages
    policy = _effective_policy(pkgs.resolution, pkgs.platform_specific.block(platform).resolution)
    return _fallback(canonicalize_name(name), policy)


def configured_platforms(loaded: LoadedConfig) -> tuple[list[PlatformKey], str | None]:
    """The platforms a runtime is built for (`build.platforms`) and a note when fewer than configured.

    A `local` interpreter exists for the host only: such a runtime counts for the host platform,
    so `build --all-platforms`, `check` and `config validate` neither fail nor wait on the others.
    """
    platforms = list(loaded.config.build.platforms)
    if loaded.config.python.source != "local":
        return platforms, None
    host = host_platform_key()
    kept = [p for p in platforms if p == host]
    left = [p for p in platforms if p != host]
    note = (
        f"runtime {loaded.runtime.name} uses a local interpreter: only the host platform ({host}) counts, "
        f"not {', '.join(left)}"
        if left
        else None
    )
    return kept, note
