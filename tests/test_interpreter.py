"""PBS naming, mirror choice, SHA256SUMS parsing and the version check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runenv.build.interpreter.pbs import DEFAULT_MIRROR, archive_name, choose_mirror, parse_sums
from runenv.build.interpreter.version import check_version
from runenv.config.models import PythonConfig
from runenv.errors import BuildError
from runenv.platforms import get_platform
from tests.helpers.pbs import VERSION


def test_archive_names_follow_python_build_standalone() -> None:
    assert (
        archive_name("3.12.10", "20250517", get_platform("linux-aarch64"), "install_only_stripped")
        == "cpython-3.12.10+20250517-aarch64-unknown-linux-gnu-install_only_stripped.tar.gz"
    )
    assert (
        archive_name("3.11.9", "20250517", get_platform("windows-x64"), "install_only")
        == "cpython-3.11.9+20250517-x86_64-pc-windows-msvc-install_only.tar.gz"
    )


def test_mirror_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_mirror(PythonConfig()).url == DEFAULT_MIRROR
    configured = PythonConfig(mirror="https://mirror.example.invalid/pbs/")
    assert choose_mirror(configured).url == "https://mirror.example.invalid/pbs"
    assert choose_mirror(configured).origin == "python.mirror"
    monkeypatch.setenv("RUNENV_PBS_MIRROR", "http://127.0.0.1:9/pbs/")
    chosen = choose_mirror(configured)
    assert (chosen.url, chosen.origin) == ("http://127.0.0.1:9/pbs", "RUNENV_PBS_MIRROR")
    assert chosen.release_url("20250517", "SHA256SUMS") == "http://127.0.0.1:9/pbs/20250517/SHA256SUMS"


def test_parse_sums_accepts_both_sha256sum_formats() -> None:
    a, b = "a" * 64, "B" * 64
    text = f"{a}  cpython-x.tar.gz\n{b} *dir/cpython-y.tar.gz\nnot a line\n\n"
    assert parse_sums(text) == {"cpython-x.tar.gz": a, "cpython-y.tar.gz": "b" * 64}


def test_version_check_runs_the_interpreter(tmp_path: Path) -> None:
    check_version(Path(sys.executable), VERSION, "this interpreter")
    with pytest.raises(BuildError, match=f"this interpreter contains Python {VERSION}, but the runtime needs 3.0.0"):
        check_version(Path(sys.executable), "3.0.0", "this interpreter")
    broken = tmp_path / "python3"
    broken.write_text("#!/bin/sh\necho boom >&2; exit 3\n")
    broken.chmod(0o755)
    with pytest.raises(BuildError, match="failed to start \\(exit 3\\): boom"):
        check_version(broken, VERSION, "broken")
