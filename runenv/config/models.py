"""Pydantic models of a config file; the same shape for shared-config.json and python-*/config.json."""

from __future__ import annotations

import difflib
import posixpath
import re
from typing import Annotated, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from runenv.build.interpreter.catalogue import RELEASE_TAG_HINT, RELEASE_TAG_RE, is_release_tag
from runenv.build.packages.vcs import is_vcs_text, parse_vcs_url
from runenv.platforms import DEFAULT_MANYLINUX, PLATFORM_KEYS, PlatformKey
from runenv.redact import redact

MAX_TIMEOUT = 86400  # seconds: a day per network operation; more is a typo (and overflows timers)


def _requirement(value: str) -> str:
    """A PEP 508 requirement, or a bare git URL as the seed system writes them (`git+https://…@rev`)."""
    if is_vcs_text(value):
        parse_vcs_url(value.strip(), redact(value))
        return value
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"invalid requirement {redact(value)!r}: {str(exc).splitlines()[0]}") from None
    if req.url and is_vcs_text(req.url):
        parse_vcs_url(req.url, redact(value), req.name)
    return value


def _name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", value):
        raise ValueError(f"invalid package name {value!r}")
    return canonicalize_name(value)


def _url(value: str) -> str:
    if not re.match(r"^(https?|file)://\S+$", value):
        raise ValueError(f"invalid index URL {value!r} (expected http://, https:// or file://)")
    return value.rstrip("/")


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"invalid sha256 {value!r} (expected 64 hex digits)")
    return value.lower()


def _release(value: str) -> str:
    if not is_release_tag(value):
        raise ValueError(f"invalid python.release {value[:40]!r} ({RELEASE_TAG_HINT})")
    return value


def _override(value: str) -> str:
    if not value.strip():
        raise ValueError("empty override (expected a version like 2.3.0 or a specifier like >=2,<3)")
    spec = value if value[:1] in "=!<>~" else f"=={value}"
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise ValueError(
            f"invalid override {value!r} (expected a version like 2.3.0 or a specifier like >=2,<3)"
        ) from None
    return value


SITE_PACKAGES = "{site-packages}"
RequirementStr = Annotated[str, AfterValidator(_requirement)]
PackageName = Annotated[str, AfterValidator(_name)]
IndexUrl = Annotated[str, AfterValidator(_url)]
Sha256Hex = Annotated[str, AfterValidator(_sha256)]
ReleaseTag = Annotated[str, AfterValidator(_release)]
Reason = str


def _merge_name_keys(value: dict[object, object]) -> dict[object, object]:
    """Fold keys that are one package under PEP 503 (`NumPy`, `numpy`) into one normalised key."""
    merged: dict[object, object] = {}
    for key, item in value.items():
        norm = canonicalize_name(key) if isinstance(key, str) else key
        existing = merged.get(norm)
        if isinstance(existing, dict) and isinstance(item, dict):
            merged[norm] = {**existing, **item}
        else:
            merged[norm] = item
    return merged


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class PythonConfig(Model):
    """Where the interpreter comes from."""

    source: Literal["pbs", "local"] = Field("pbs", description="pbs: python-build-standalone; local: a prefix")
    release: ReleaseTag | None = Field(
        None,
        description="python-build-standalone release tag, e.g. 20250517 (default: the newest catalogued release "
        "that ships the runtime's version for every platform in build.platforms)",
        json_schema_extra={"pattern": RELEASE_TAG_RE.pattern},
    )
    flavor: Literal["install_only_stripped", "install_only"] = "install_only_stripped"
    mirror: IndexUrl | None = Field(None, description="base URL of PBS release downloads")
    sha256: dict[PlatformKey, Sha256Hex] = Field(default_factory=dict, description="pinned archive hashes")
    path: str | None = Field(None, description="installed CPython prefix for source 'local'")


class RegistriesConfig(Model):
    """Package indexes: `default` replaces the machine's configured index, `additional` add to it."""

    default: list[IndexUrl] = Field(default_factory=list)
    additional: list[IndexUrl] = Field(default_factory=list)
    index_strategy: Literal["best-match", "first-index"] = Field(
        "best-match",
        alias="indexStrategy",
        description="best-match: the best version across all indexes (pip's --extra-index-url); "
        "first-index: only the first index that has the package (safer against dependency confusion)",
    )


class ResolutionPolicy(Model):
    """What happens when a package has no fitting wheel."""

    allow_source_all: bool = Field(False, alias="allowSourceAll")
    strict_missing: bool = Field(False, alias="strictMissing")
    allow_source_list: list[PackageName] = Field(default_factory=list, alias="allowSourceList")
    force_no_binary_list: list[PackageName] = Field(default_factory=list, alias="forceNoBinaryList")
    only_binary_list: list[PackageName] = Field(default_factory=list, alias="onlyBinaryList")


class CopyFile(Model):
    """A file or directory copied into the runtime: `from` is relative to the directory of the config file that
    declares it (after loading: to the workspace root); `to` is relative to the runtime prefix, `{site-packages}`
    expanded."""

    from_: str = Field(alias="from", description="source, relative to the directory of the declaring config file")
    to: str = Field(description="target inside the runtime prefix; {site-packages} is expanded")

    @field_validator("from_")
    @classmethod
    def _relative_source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty copyFiles source (name a file or directory)")
        if "\0" in value:
            raise ValueError("copyFiles source holds a NUL character")
        if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
            raise ValueError(
                f"absolute copyFiles source {value!r} (sources are relative to the config file's directory)"
            )
        return value

    @field_validator("to")
    @classmethod
    def _target_inside_runtime(cls, value: str) -> str:
        normal = posixpath.normpath(value.replace(SITE_PACKAGES, "site-packages").lstrip("/")) if value else ""
        if not value.strip() or "\0" in value or normal == ".." or normal.startswith("../"):
            raise ValueError(f"copyFiles target {value!r} is not inside the runtime")
        return value


class PlatformBlock(Model):
    """Additions for one platform: extra dependencies, files and resolution policy."""

    dependencies: list[RequirementStr] = Field(default_factory=list)
    copy_files: list[CopyFile] = Field(default_factory=list, alias="copyFiles")
    resolution: ResolutionPolicy = Field(default_factory=ResolutionPolicy)


class PackageRule(Model):
    action: Literal["skip", "forceSource"]
    reason: Reason | None = None


class PlatformSpecific(BaseModel):
    """Platform keys hold a PlatformBlock; any other key is a package name holding per-platform rules."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    __pydantic_extra__: dict[PackageName, dict[PlatformKey, PackageRule]]

    linux_x64: PlatformBlock | None = Field(None, alias="linux-x64")
    linux_aarch64: PlatformBlock | None = Field(None, alias="linux-aarch64")
    macosx_x64: PlatformBlock | None = Field(None, alias="macosx-x64")
    macosx_aarch64: PlatformBlock | None = Field(None, alias="macosx-aarch64")
    windows_x64: PlatformBlock | None = Field(None, alias="windows-x64")

    @model_validator(mode="before")
    @classmethod
    def _package_keys(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        for key in value:
            if key not in PLATFORM_KEYS and re.match(r"^(linux|macos|macosx|darwin|windows|win)[-_]", str(key)):
                close = difflib.get_close_matches(str(key), PLATFORM_KEYS, n=1, cutoff=0.4)
                hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(PLATFORM_KEYS)}"
                raise ValueError(f"unknown platform key {key!r} ({hint})")
        blocks = {k: v for k, v in value.items() if k in PLATFORM_KEYS}
        packages = _merge_name_keys({k: v for k, v in value.items() if k not in PLATFORM_KEYS})
        return {**blocks, **packages}

    def block(self, platform: str) -> PlatformBlock:
        return getattr(self, platform.replace("-", "_")) or PlatformBlock()

    def package_rules(self) -> dict[str, dict[PlatformKey, PackageRule]]:
        return dict(self.__pydantic_extra__ or {})


class BuildWheelSpec(Model):
    """Build this package's wheel from its sdist on the target platform."""

    reason: Reason | None = None
    build_requires: list[RequirementStr] = Field(default_factory=list, alias="buildRequires")
    config_settings: list[str] = Field(default_factory=list, alias="configSettings")


class PackagesConfig(Model):
    dependencies: list[RequirementStr] = Field(default_factory=list)
    overrides: dict[PackageName, Annotated[str, AfterValidator(_override)]] = Field(default_factory=dict)
    skip: dict[PackageName, dict[PlatformKey, Reason]] = Field(
        default_factory=dict,
        description="left out as a direct dependency; still installed when a kept package needs it",
    )
    exclude: dict[PackageName, dict[PlatformKey, Reason]] = Field(
        default_factory=dict, description="never installed on that platform, not even as a dependency"
    )
    force_source: dict[PackageName, dict[PlatformKey, Reason]] = Field(default_factory=dict, alias="forceSource")
    platform_specific: PlatformSpecific = Field(default_factory=PlatformSpecific, alias="platformSpecific")
    resolution: ResolutionPolicy = Field(default_factory=ResolutionPolicy)
    build_wheel: dict[PackageName, dict[PlatformKey, BuildWheelSpec]] = Field(default_factory=dict, alias="buildWheel")
    no_deps: list[PackageName] = Field(default_factory=list, alias="noDeps")
    copy_files: list[CopyFile] = Field(default_factory=list, alias="copyFiles")

    @field_validator("overrides", "skip", "exclude", "force_source", "build_wheel", mode="before")
    @classmethod
    def _fold_names(cls, value: object) -> object:
        return _merge_name_keys(value) if isinstance(value, dict) else value


def _hook_command(value: str | list[str]) -> str | list[str]:
    if not (value.strip() if isinstance(value, str) else value):
        raise ValueError('empty hook command (expected an argv list like ["./sign.sh"] or a shell string)')
    return value


# An argv list (run as is) or a string (run by the shell: sh -c, cmd /c on Windows).
HookCommand = Annotated[str | list[str], AfterValidator(_hook_command)]
HookPlatform = Literal["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64", "*"]


class HooksConfig(Model):
    """Commands run on the staged runtime during a build (e.g. signing before packing)."""

    before_pack: dict[HookPlatform, HookCommand | None] = Field(
        default_factory=dict,
        alias="beforePack",
        description='{platform or "*": command or null}; a plain command means {"*": command}',
    )

    @field_validator("before_pack", mode="before")
    @classmethod
    def _every_platform(cls, value: object) -> object:
        return {"*": value} if isinstance(value, (str, list)) else value

    def before_pack_for(self, platform: str) -> str | list[str] | None:
        """The beforePack command for `platform`: its own entry, else the "*" entry."""
        hooks = self.before_pack
        return hooks[platform] if platform in hooks else hooks.get("*")


class BuildConfig(Model):
    enable_logging: bool = Field(True, alias="enableLogging")
    parallel_downloads: bool = Field(True, alias="parallelDownloads")
    timeout: StrictInt = Field(300, gt=0, le=MAX_TIMEOUT, description="seconds for one network operation")
    platforms: list[PlatformKey] = Field(default_factory=lambda: list(PLATFORM_KEYS))
    distutils_shim: bool = Field(True, alias="distutilsShim")
    compression: Literal["gz", "zst"] = "gz"
    manylinux: str = Field(DEFAULT_MANYLINUX, pattern=r"^2_\d+$", description="glibc floor for linux wheels")
    macosx: str | None = Field(None, pattern=r"^1\d\.\d+$", description="macOS deployment target floor")
    ship_sdists: bool = Field(False, alias="shipSdists")
    wheelhouse: bool = False
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    runners: dict[PlatformKey, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict, description="CI runner label per platform for `runenv matrix` (defaults: README)"
    )
    native: list[PlatformKey] = Field(
        default_factory=list, description="platforms always built on their own runner (native verification)"
    )


class VerifyConfig(Model):
    allow: dict[Annotated[str, Field(min_length=1)], dict[Annotated[str, Field(min_length=1)], str]] = Field(
        default_factory=dict,
        description="{wheel-file glob or distribution: {module: error substring}} accepted verification failures "
        "(the format of checks/<platform>.json)",
    )


class PublishConfig(Model):
    target: str | None = Field(None, description="directory, file://, http(s)://, s3:// or oci:// target")
    s3_endpoint: IndexUrl | None = Field(
        None, alias="s3Endpoint", description="S3-compatible endpoint URL for s3:// targets (RUNENV_S3_ENDPOINT wins)"
    )


class RuntimeConfig(Model):
    """One config file, or the merged config of a runtime."""

    schema_: str | None = Field(None, alias="$schema")
    python: PythonConfig = Field(default_factory=PythonConfig)
    registries: RegistriesConfig = Field(default_factory=RegistriesConfig)
    packages: PackagesConfig = Field(default_factory=PackagesConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
