"""Loading config files with errors that name the file, the line or the JSON path."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from runenv.config.copy_sources import anchor_copy_sources
from runenv.config.merge import merge, registry_origins
from runenv.config.models import PackageRule, PlatformSpecific, RuntimeConfig
from runenv.errors import ConfigError
from runenv.redact import redact
from runenv.workspace import Runtime, Workspace

Loc = tuple[int | str, ...]  # a JSON path as pydantic reports it: keys and list indexes


@dataclass(frozen=True)
class LoadedConfig:
    """The merged, validated config of one runtime and what it was made from."""

    runtime: Runtime
    config: RuntimeConfig
    sources: tuple[Path, ...]
    digest: str  # sha256 of the canonical merged JSON
    registry_origins: dict[str, str] = field(default_factory=dict)  # index URL -> "file: registries.key[i]"

    def as_json(self) -> dict[str, Any]:
        """The merged config for display: credentials in URLs are hidden."""
        data = self.config.model_dump(mode="json", by_alias=True, exclude={"schema_"})
        registries = data["registries"]
        for key in ("default", "additional"):
            registries[key] = [redact(url) for url in registries[key]]
        for section, key in (("python", "mirror"), ("publish", "target")):
            if data[section].get(key):
                data[section][key] = redact(data[section][key])
        return data


MAX_DEPTH = 64  # far beyond any real config; deeper documents would exhaust the recursion limit downstream


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; malformed JSON, a duplicate key or absurd nesting names the file (and where)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    duplicates: list[tuple[int, str]] = []  # (id of the object, key)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in items:
            if key in obj:
                duplicates.append((id(obj), key))
            obj[key] = value
        return obj

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply (more than {MAX_DEPTH} levels)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, found {type(data).__name__}")
    where = _locate(data, {obj for obj, _ in duplicates}, path)
    if duplicates:
        obj, key = duplicates[0]
        raise ConfigError(f"{path}: {where[obj]}: duplicate key {key!r}", hint="each key may appear once per object")
    return data


def _locate(data: dict[str, Any], wanted: set[int], path: Path) -> dict[int, str]:
    """JSON paths of the objects in `wanted` (by id); refuses nesting deeper than MAX_DEPTH."""
    found: dict[int, str] = {}
    stack: list[tuple[Any, Loc, int]] = [(data, (), 0)]
    while stack:
        value, loc, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: {json_path(loc[:3])}…: JSON nested too deeply (more than {MAX_DEPTH} levels)")
        if id(value) in wanted:
            found[id(value)] = json_path(loc)
        if isinstance(value, dict):
            stack.extend((v, (*loc, k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*loc, i), depth + 1) for i, v in enumerate(value))
    return found


def json_path(loc: Loc) -> str:
    """`packages.skip.cudf-cu12[0]`-style path for a pydantic error location."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp


def _keys_at(loc: Loc) -> list[str]:
    """Valid keys of the object at `loc` (the parent of an unknown key), for "did you mean"."""
    tp: Any = RuntimeConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {(f.alias or n): f.annotation for n, f in tp.model_fields.items()}
            if part in fields:
                tp = fields[part]
            elif tp is PlatformSpecific:
                tp = dict[str, PackageRule]  # a package name's per-platform rules
            else:
                return []
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _describe(error: ErrorDetails) -> tuple[str, str | None]:
    loc = tuple(error["loc"])
    kind = error["type"]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _keys_at(loc[:-1]), n=1, cutoff=0.5)
        return f"unknown key {key!r}", (f"did you mean {close[0]!r}?" if close else None)
    if kind == "literal_error":
        expected = [
            e.strip().strip("'") for e in error.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")
        ]
        value = error.get("input")
        what = "unknown platform key" if loc and loc[-1] == "[key]" else "invalid value"
        close = difflib.get_close_matches(str(value), expected, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(expected)}"
        return f"{what} {value!r}", hint
    return msg, None


def validate(data: dict[str, Any], origin: str) -> RuntimeConfig:
    """Validate one config document; errors name `origin` and the JSON path of the first problem."""
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key also makes its intended key "missing"; the misspelling is the useful report.
        first = min(errors, key=lambda e: e["type"] not in ("extra_forbidden", "literal_error"))
        message, suggestion = _describe(first)
        if suggestion:
            message += f" ({suggestion})"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(f"{origin}: {json_path(tuple(first['loc']))}: {message}{more}") from None


def _set_fields(path: Path, root: Path) -> dict[str, Any]:
    """The file's content as validated data, keeping only what the file sets (names normalised, copyFiles
    sources relative to the workspace root)."""
    model = validate(read_json(path), str(path))
    data = model.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"schema_"})
    return anchor_copy_sources(data, path, root)


def digest_of(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_runtime_config(workspace: Workspace, runtime: Runtime) -> LoadedConfig:
    """Load, validate and merge shared-config.json with the runtime's config.json."""
    shared = _set_fields(workspace.shared_config_path, workspace.root)
    own = _set_fields(runtime.config_path, workspace.root)
    merged = merge(shared, own)
    origin = f"{workspace.shared_config_path.name} + {runtime.directory.name}/config.json"
    config = validate(merged, origin)
    dumped = config.model_dump(mode="json", by_alias=True, exclude={"schema_"})
    labels = [(workspace.shared_config_path.name, shared), (f"{runtime.directory.name}/config.json", own)]
    sources = (workspace.shared_config_path, runtime.config_path)
    return LoadedConfig(runtime, config, sources, digest_of(dumped), registry_origins(labels))


def config_schema() -> dict[str, Any]:
    """JSON Schema of a config file."""
    schema = RuntimeConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "runenv config (shared-config.json and python-*/config.json)"
    return schema
