"""Known failures allowed per platform, in the seed checker's whitelist format: `checks/<platform>.json` and the
config's `verify.allow`, both `{wheel-file glob or distribution: {module: error substring}}`."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from runenv.build.verify.report import Failure, UnusedAllowance
from runenv.errors import ConfigError

Allowlist = dict[str, dict[str, str]]  # {wheel glob or distribution: {module: error substring}}
CHECKS_DIR = "checks"
FORMAT_HINT = 'expected {"numpy-*-cp312-*.whl or distribution": {"module": "error substring"}}'
_SEPARATORS = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class Allowance:
    """One allowlist entry and the file (or config key) it came from."""

    source: str
    key: str
    module: str
    substring: str

    def matches(self, failure: Failure, wheel: str | None) -> bool:
        """This entry names the failure's distribution (or its wheel file), its module, and a substring of its error."""
        return (
            names_distribution(self.key, failure.distribution, wheel)
            and (self.module == failure.module or self.module == failure.file or _glob(failure.module, self.module))
            and self.substring.lower() in failure.error.lower()
        )


def _glob(name: str, pattern: str) -> bool:
    return any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern)


def _loose(name: str) -> str:
    """A wheel file name or glob with `-`, `_` and `.` made alike (the seed writes `charset-normalizer-3-*-whl`)."""
    return _SEPARATORS.sub("-", name.lower())


def names_distribution(key: str, distribution: str, wheel: str | None) -> bool:
    """Whether an allowlist key is the distribution's name or a glob matching its wheel file name."""
    if canonicalize_name(key) == distribution:
        return True
    return wheel is not None and (key == wheel or fnmatch.fnmatchcase(_loose(wheel), _loose(key)))


def read_checks_file(path: Path) -> Allowlist:
    """A `checks/<platform>.json` file; ConfigError naming the file and key when it is not that shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return validate_allowlist(data, str(path))


def validate_allowlist(data: object, where: str) -> Allowlist:
    """`data` as an Allowlist; ConfigError naming `where` and the key at fault otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}", hint=FORMAT_HINT)
    for key, modules in data.items():
        if not key.strip():
            raise ConfigError(f"{where}: empty key", hint=FORMAT_HINT)
        if not isinstance(modules, dict):
            raise ConfigError(f"{where}: {key}: expected an object of module: error substring", hint=FORMAT_HINT)
        for module, substring in modules.items():
            if not isinstance(substring, str):
                raise ConfigError(f"{where}: {key}.{module}: expected an error substring (a string)", hint=FORMAT_HINT)
            if not module.strip():
                raise ConfigError(f"{where}: {key}: empty module name", hint=FORMAT_HINT)
    return {k: dict(v) for k, v in data.items()}


def checks_files(workspace_root: Path) -> list[Path]:
    """Every `checks/*.json` in the workspace."""
    directory = workspace_root / CHECKS_DIR
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def allowances(allow: Allowlist, source: str) -> list[Allowance]:
    """The entries of one allowlist."""
    return [Allowance(source, key, module, text) for key, modules in allow.items() for module, text in modules.items()]


def load_allowances(workspace_root: Path, platform: str, config_allow: Allowlist) -> list[Allowance]:
    """`checks/<platform>.json`, then the config's `verify.allow` (which wins for the same key and module)."""
    path = workspace_root / CHECKS_DIR / f"{platform}.json"
    found = allowances(read_checks_file(path), f"{CHECKS_DIR}/{platform}.json") if path.is_file() else []
    entries = {(a.key, a.module): a for a in [*found, *allowances(config_allow, "verify.allow")]}
    return list(entries.values())


def split_allowed(
    failures: list[Failure], allowances: list[Allowance], wheels: dict[str, str | None]
) -> tuple[list[Failure], list[Failure], list[UnusedAllowance]]:
    """(allowed, failures, unused allowances); `wheels` gives each distribution's wheel file name."""
    allowed, failed, used = [], [], set()
    for failure in failures:
        match = next((a for a in allowances if a.matches(failure, wheels.get(failure.distribution))), None)
        if match is None:
            failed.append(failure)
        else:
            allowed.append(failure)
            used.add(match)
    unused = [UnusedAllowance(a.source, a.key, a.module) for a in allowances if a not in used]
    return allowed, failed, unused
