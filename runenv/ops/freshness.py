"""Whether a built artifact is fresh: the input digests its manifest recorded against the current ones.

File times never decide: a lock rewritten with the same content, a touched config or a `dist/` restored
from a CI cache stay fresh; a changed byte in any input makes the artifact stale, naming that input.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runenv.build.interpreter.pbs import archive_name, runtime_release
from runenv.build.interpreter.relocate import local_interpreter
from runenv.build.packages.lock import inputs_digest
from runenv.cache import sha256_file
from runenv.compat import tomllib
from runenv.config.load import LoadedConfig
from runenv.errors import RunenvError
from runenv.plan import build_plan
from runenv.platforms import get_platform

# Manifest key → what a user is told changed.
INPUT_NAMES = {
    "config-digest": "config",
    "lock-inputs-digest": "lock inputs",
    "lock-sha256": "lock",
    "allowlist-sha256": "verify allowlist",
    "interpreter": "interpreter",
}
ABSENT = "none"
# Compared only when both the manifest and the current state know it: an artifact published from a machine
# without the local prefix, or built before runenv recorded it, is not stale for that alone.
KNOWN_ONLY = {"interpreter"}
UNRECORDED = "unknown (the manifest records no inputs)"


def allowlist_path(workspace_root: Path, platform: str) -> Path:
    """The seed-format verify allowlist of one platform: `checks/<platform>.json`."""
    return workspace_root / "checks" / f"{platform}.json"


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ABSENT


def interpreter_identity(loaded: LoadedConfig, platform: str) -> str | None:
    """What names the interpreter a build would use now, without fetching anything: a local prefix's executable
    by its sha256 (as the manifest records it); a PBS archive by its release and file name (a release's archives
    never change; a `python.sha256` pin is part of the config digest). None when it cannot be told here (no such
    prefix on this machine, a host that cannot use it, a version no catalogue serves)."""
    python, runtime = loaded.config.python, loaded.runtime
    try:
        if python.source == "local":
            exe = local_interpreter(python.path, runtime.config_path, runtime.minor)
            return f"local {sha256_file(exe)}"
        release = runtime_release(loaded)
    except (RunenvError, OSError):
        return None
    return f"pbs {archive_name(runtime.version, release, get_platform(platform), python.flavor)}"


def current_inputs(workspace_root: Path, loaded: LoadedConfig, platform: str) -> dict[str, str]:
    """The digest of every input an artifact of (runtime, platform) is made from, as they are now."""
    return {
        "config-digest": loaded.digest,
        "lock-inputs-digest": inputs_digest(loaded, build_plan(loaded, platform)),
        "lock-sha256": _file_digest(loaded.runtime.lock_path(platform)),
        "allowlist-sha256": _file_digest(allowlist_path(workspace_root, platform)),
        **({"interpreter": identity} if (identity := interpreter_identity(loaded, platform)) else {}),
    }


def recorded_inputs(manifest: Path) -> dict[str, str] | None:
    """The `[inputs]` table of a sidecar manifest; None when the file is unreadable or records none."""
    try:
        data: dict[str, Any] = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    inputs = data.get("inputs")
    return {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else None


def changed_inputs(recorded: dict[str, str] | None, current: dict[str, str]) -> list[str]:
    """Names of the inputs whose digest differs from the recorded one (every input when nothing was recorded)."""
    if recorded is None:
        return [UNRECORDED]
    return [
        INPUT_NAMES[key]
        for key, value in current.items()
        if recorded.get(key) != value and (key not in KNOWN_ONLY or key in recorded)
    ]
