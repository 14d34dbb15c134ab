# ruff: noqa: E501  (uv messages are pasted verbatim)
"""Reading uv's output: its version, the packages its errors say lack a wheel, the index it could not reach,
its errors on one line, its annotated resolution and the names its `--no-deps` lock gives git requirements.

The messages are real: produced by uv 0.13.9 (`uv pip compile --only-binary :all:`) against loopback
indexes built with tests/helpers/index.py (and a local git repository), pasted verbatim.
"""

from __future__ import annotations

import subprocess

import pytest

from runenv.build.packages.resolve import (
    error_summary,
    no_wheel_names,
    parse_annotations,
    parse_uv_version,
    unreachable_index,
    uv_bin,
    vcs_names,
)
from runenv.build.packages.vcs import parse_vcs
from runenv.compat import tomllib
from runenv.redact import register_secret

NAME_DEV_RANGE = """\
error: No solution found when resolving dependencies
  cause: Because name>=1.0.dev1 has no usable wheels and you require name>=1.0.dev1, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `name` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

# As quoted in issue 10 (a seed workspace's lock): a range with a dev release.
RPY2_RANGE = "rpy2-rinterface>=3.6.0.dev1 has no usable wheels"

ALL_VERSIONS_TRANSITIVE = """\
error: No solution found when resolving dependencies
  cause: Because all versions of rpy2-rinterface have no usable wheels and all versions of rpy2 depend on rpy2-rinterface, we can conclude that all versions of rpy2 cannot be used.
         And because you require rpy2, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `rpy2-rinterface` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

PINNED_SDIST_ONLY = """\
error: No solution found when resolving dependencies
  cause: Because freesasa==2.2.1 has no usable wheels and only freesasa==2.2.1 is available, we can conclude that all versions of freesasa cannot be used.
         And because all versions of two depend on freesasa and you require two, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `freesasa` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

WRONG_PLATFORM_TAG = """\
error: No solution found when resolving dependencies
  cause: Because winonly==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_28_x86_64`) and only winonly==1.0 is available, we can conclude that all versions of winonly cannot be used.
         And because all versions of needs-win depend on winonly and you require needs-win, we can conclude that your requirements are unsatisfiable.

hint: Wheels are available for `winonly` (v1.0) on the following platform: `win_amd64`
"""

VERSION_LIST = """\
error: No solution found when resolving dependencies
  cause: Because rpy2-rinterface==3.6.0.dev1 has no usable wheels and only rpy2-rinterface>=3.6.0.dev1 is available, we can conclude that rpy2-rinterface<=3.6.0.dev1 cannot be used.
         And because only the following versions of rpy2-rinterface are available:
             rpy2-rinterface<=3.6.0
             rpy2-rinterface>=3.6.1
         we can conclude that rpy2-rinterface<=3.6.0.dev1 cannot be used.
         And because only the following versions of rpy2-rinterface are available:
             rpy2-rinterface<=3.6.0.dev1
             rpy2-rinterface>=3.6.0
         and you require rpy2-rinterface<3.6.0, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `rpy2-rinterface` because building from source is disabled for all packages (i.e., with `--no-build`)
"""

UNREACHABLE = """\
error: Request failed after 3 retries in 7.0s
  cause: Failed to fetch: http://127.0.0.1:9/simple/pkg/
  cause: error sending request for url (http://127.0.0.1:9/simple/pkg/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""


@pytest.mark.parametrize(
    ("message", "names"),
    [
        (NAME_DEV_RANGE, ["name"]),
        (RPY2_RANGE, ["rpy2-rinterface"]),
        (ALL_VERSIONS_TRANSITIVE, ["rpy2-rinterface"]),
        (PINNED_SDIST_ONLY, ["freesasa"]),
        (WRONG_PLATFORM_TAG, ["winonly"]),
        (VERSION_LIST, ["rpy2-rinterface"]),
        (UNREACHABLE, []),
        ("  cause: Because foo<1.0 | >3.0 has no usable wheels", ["foo"]),
    ],
)
def test_no_wheel_names_reads_the_package_not_its_version(message, names):
    assert no_wheel_names(message) == names


ANNOTATED = """\
freesasa==2.2.1           # via prodigy-prot
    # from http://127.0.0.1:18081/simple
prodigy-prot==1.0         # via -r requirements.in
    # from http://127.0.0.1:18081/simple
rpy2==3.6.0               # via sccoda, -r requirements.in
    # from http://127.0.0.1:18081/simple
rpy2-rinterface==3.6.0.dev1  # via rpy2
    # from http://127.0.0.1:18082/simple
sccoda==1.0               # via -r requirements.in
    # from http://127.0.0.1:18081/simple
"""


def test_parse_annotations_gives_index_and_parents_per_package():
    index, parents = parse_annotations(ANNOTATED)
    assert index["rpy2-rinterface"] == "http://127.0.0.1:18082/simple"
    assert parents == {
        "freesasa": ["prodigy-prot"],
        "prodigy-prot": [""],
        "rpy2": ["sccoda", ""],
        "rpy2-rinterface": ["rpy2"],
        "sccoda": [""],
    }


def test_parse_annotations_reads_direct_references():
    index, parents = parse_annotations("tool @ git+https://example.invalid/tool.git@0123abc  # via -r r.in\n")
    assert parents == {"tool": [""]} and index == {}


def test_parse_uv_version_reads_the_version_word():
    assert parse_uv_version("uv 0.13.9 (x86_64-unknown-linux-gnu)\n") == "0.13.9"
    assert parse_uv_version("uv 0.5.4 (c62c83c37 2024-11-20)") == "0.5.4"
    assert parse_uv_version("0.13.9\n") == "0.13.9"
    real = subprocess.run([uv_bin(), "--version"], capture_output=True, text=True, check=True).stdout
    version = parse_uv_version(real)
    assert version[0].isdigit() and version.count(".") == 2 and version in real


# uv strips credentials from the URL it failed on (the index was `http://user:SECRET@127.0.0.1:9/private/simple`).
UNREACHABLE_PRIVATE = """\
error: Request failed after 3 retries in 6.5s
  cause: Failed to fetch: http://127.0.0.1:9/private/simple/tool-a/
  cause: error sending request for url (http://127.0.0.1:9/private/simple/tool-a/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""


def test_unreachable_index_names_the_configured_registry_and_where_it_was_set():
    registries = {
        "http://user:SECRET@127.0.0.1:9/private/simple": "registries.additional in shared-config.json",
        "http://127.0.0.1:9/": "registries.default in python-3.12.10/config.json",
    }
    assert unreachable_index(UNREACHABLE_PRIVATE, registries) == (
        "http://user:SECRET@127.0.0.1:9/private/simple",  # the longest registry holding the URL
        "registries.additional in shared-config.json",
    )
    assert unreachable_index(UNREACHABLE, {"http://127.0.0.1:8/simple": "x"}) == (
        "http://127.0.0.1:9/simple",
        "the machine's configured index",
    )
    assert unreachable_index(NAME_DEV_RANGE, registries) is None


def test_error_summary_is_one_line_without_warnings_or_secrets():
    register_secret("SECRETz9-summary")
    text = "warning: Ignoring existing lockfile\n" + UNREACHABLE.replace(
        "127.0.0.1:9", "u:SECRETz9-summary@127.0.0.1:9"
    )
    summary = error_summary(text)
    assert summary.startswith("error: Request failed after 3 retries in 7.0s cause: Failed to fetch:")
    assert "\n" not in summary and "warning" not in summary and "SECRETz9-summary" not in summary
    assert len(error_summary("error: " + "x" * 2000)) == 600
    assert error_summary("warning: only a warning\n\n") == "uv failed without a message"


def test_parse_annotations_of_a_real_resolution_with_an_sdist_and_a_requirements_path():
    text = """\
helper-lib==1.2           # via tool-a
    # from http://127.0.0.1:36525/simple
sdistonly==2.0            # via -r /tmp/health/cap/req.in
    # from http://127.0.0.1:36525/simple
tool-a==1.0               # via -r /tmp/health/cap/req.in
    # from http://127.0.0.1:36525/simple
"""
    index, parents = parse_annotations(text)
    assert parents == {"helper-lib": ["tool-a"], "sdistonly": [""], "tool-a": [""]}
    assert set(index.values()) == {"http://127.0.0.1:36525/simple"} and set(index) == set(parents)


# `uv pip compile --no-deps --format pylock.toml` of two bare git requirements (one in a subdirectory).
VCS_LOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.12"

[[packages]]
name = "my-tool"
version = "0.3"
vcs = { type = "git", url = "file:///tmp/health/gitproj", requested-revision = "v0.3", commit-id = "05229b50b6be8d4809045bf6dd9723e80a2bf381" }

[[packages]]
name = "sub-tool"
version = "0.3"
vcs = { type = "git", url = "file:///tmp/health/gitproj.git", requested-revision = "v0.3", commit-id = "05229b50b6be8d4809045bf6dd9723e80a2bf381", subdirectory = "sub" }
"""


def test_vcs_names_match_repository_revision_and_subdirectory():
    whole, sub = "git+file:///tmp/health/gitproj@v0.3", "git+file:///tmp/health/gitproj.git@v0.3#subdirectory=sub"
    other_rev = "git+file:///tmp/health/gitproj@v0.4"
    wanted = {text: parse_vcs(text) for text in (whole, sub, other_rev, "tool-a")}
    entries = tomllib.loads(VCS_LOCK)["packages"]
    assert vcs_names(wanted, entries) == {whole: "my-tool", sub: "sub-tool"}
