"""The GitHub Actions workflow `runenv ci github` writes: matrix job → build jobs → one publish job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runenv import __version__
from runenv.workspace import Workspace

WORKFLOW_PATH = Path(".github/workflows/runenv.yml")
PYTHON = "3.12"  # the Python that runs runenv on the runners (not the runtimes' Python)
DOWNLOADS = "runner-dist"  # where the publish job gathers the build jobs' artifacts

# What every job does first: the repository, the Python that runs runenv, runenv.
SETUP = """\
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
        with:
          python-version: "{python}"
      - run: python -m pip install "$RUNENV_INSTALL\""""

TEMPLATE = """\
# Written by `runenv ci github` (runenv {version}). The build matrix is not written here: the
# `matrix` job computes it from the workspace's configs and locks on every run (`runenv matrix`).
name: runenv

on:
  push:
    branches: [main]
  pull_request:
  workflow_dispatch:

permissions:
  contents: read

defaults:
  run:
    shell: bash{working_directory}

env:
  RUNENV_INSTALL: "{install}"

jobs:
  matrix:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.matrix.outputs.matrix }}}}
    steps:
{setup}
      - id: matrix
        run: |
          {{
            echo "matrix<<RUNENV_MATRIX_EOF"
            runenv matrix --all --output json
            echo "RUNENV_MATRIX_EOF"
          }} >> "$GITHUB_OUTPUT"

  build:
    needs: matrix
    name: ${{{{ matrix.name }}}}
    runs-on: ${{{{ matrix.runner }}}}
    strategy:
      fail-fast: false
      matrix: ${{{{ fromJSON(needs.matrix.outputs.matrix) }}}}
    env:
      RUNENV_CACHE_DIR: ${{{{ github.workspace }}}}/.runenv-cache
    steps:
{setup}
      - uses: actions/cache@v5
        with:
          path: .runenv-cache
          key: runenv-${{{{ matrix.artifact }}}}-${{{{ hashFiles({hashed}) }}}}
          restore-keys: runenv-${{{{ matrix.artifact }}}}-
      - name: runenv build
        env:
          RUNTIME: ${{{{ matrix.runtime }}}}
          PLATFORM_ARGS: ${{{{ matrix.platformArgs }}}}
        run: |
          # shellcheck disable=SC2086 # "--platform A --platform B", split on purpose
          runenv build "$RUNTIME" $PLATFORM_ARGS{locked}
      - uses: actions/upload-artifact@v6
        with:
          name: ${{{{ matrix.artifact }}}}
          path: {dist}
          if-no-files-found: error

  publish:
    needs: build
    if: github.event_name != 'pull_request'
    runs-on: ubuntu-latest
    concurrency:
      group: runenv-publish
      cancel-in-progress: false
    steps:
{setup}
      - uses: actions/download-artifact@v7
        with:
          pattern: dist-*
          path: {downloads}
      - name: runenv publish
        env:
          RUNENV_PUBLISH_TARGET: ${{{{ secrets.RUNENV_PUBLISH_TARGET }}}}
          RUNENV_PUBLISH_USER: ${{{{ secrets.RUNENV_PUBLISH_USER }}}}
          RUNENV_PUBLISH_PASSWORD: ${{{{ secrets.RUNENV_PUBLISH_PASSWORD }}}}
          RUNENV_PUBLISH_TOKEN: ${{{{ secrets.RUNENV_PUBLISH_TOKEN }}}}
          AWS_ACCESS_KEY_ID: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}
          AWS_SECRET_ACCESS_KEY: ${{{{ secrets.AWS_SECRET_ACCESS_KEY }}}}
          AWS_REGION: ${{{{ vars.AWS_REGION }}}}
          RUNENV_S3_ENDPOINT: ${{{{ vars.RUNENV_S3_ENDPOINT }}}}
        run: |
          from=()
          for dir in "$GITHUB_WORKSPACE/{downloads}"/*/; do from+=(--from "$dir"); done
          runenv publish --all "${{from[@]}}" --to "$RUNENV_PUBLISH_TARGET"
"""


@dataclass(frozen=True)
class WorkflowFile:
    path: Path
    text: str


def repository_root(ws: Workspace) -> Path:
    """The nearest directory at or above the workspace holding `.git`, else the workspace itself."""
    for candidate in (ws.root, *ws.root.parents):
        if (candidate / ".git").exists():
            return candidate
    return ws.root


def render_workflow(ws: Workspace, *, install: str | None = None) -> WorkflowFile:
    """The workflow for `ws`, at `.github/workflows/runenv.yml` of its repository (paths relative to that)."""
    repo = repository_root(ws)
    rel = ws.root.relative_to(repo).as_posix()
    prefix = "" if rel == "." else f"{rel}/"
    hashed = ", ".join(f"'{prefix}{p}'" for p in ("**/pylock.*.toml", "shared-config.json", "python-*/config.json"))
    locked = any(next(rt.directory.glob("pylock.*.toml"), None) for rt in ws.runtimes())
    text = TEMPLATE.format(
        version=__version__,
        install=install or f"runenv[s3]=={__version__}",
        setup=SETUP.format(python=PYTHON),
        working_directory="" if rel == "." else f"\n    working-directory: {rel}",
        hashed=hashed,
        locked=" --locked" if locked else "",
        dist=f"{prefix}dist/",
        downloads=DOWNLOADS,
    )
    return WorkflowFile(repo / WORKFLOW_PATH, text)
