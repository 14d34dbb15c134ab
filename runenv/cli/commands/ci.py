"""CLI commands: `matrix` (the CI fan-out) and `ci github` (a workflow that uses it)."""

from __future__ import annotations

import typer

from runenv.cli.app import app, complete_runtime, options
from runenv.config import load_runtime_config
from runenv.errors import UsageError
from runenv.files import write_text_atomic
from runenv.ops.ci_github import render_workflow
from runenv.ops.matrix import Job, github_matrix, render_table, runtime_jobs

ci_app = typer.Typer(help="Write CI configuration that builds and publishes the workspace.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


@app.command()
def matrix(
    ctx: typer.Context,
    runtimes: list[str] = typer.Argument(
        None, help="Runtimes to plan (default: every runtime).", autocompletion=complete_runtime
    ),
    all_runtimes: bool = typer.Option(False, "--all", help="Every runtime in the workspace (the default)."),
) -> None:
    """CI jobs: one native job per (runtime, platform) that needs its own runner, one cross job per runtime."""
    opts = options(ctx)
    ws = opts.workspace()
    selected = ws.select(list(runtimes or []), all_runtimes or not runtimes)
    jobs: list[Job] = []
    for rt in selected:
        jobs += runtime_jobs(load_runtime_config(ws, rt))
    opts.emit(github_matrix(jobs), lambda: render_table(jobs))


@ci_app.command("github")
def ci_github(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Overwrite a workflow file that differs."),
    install: str | None = typer.Option(
        None, "--install", help="What the runners pip-install (default: runenv[s3]==<this version>)."
    ),
) -> None:
    """Write .github/workflows/runenv.yml: matrix job → build jobs → one publish job."""
    opts = options(ctx)
    ws = opts.workspace()
    if install is not None and (not install.strip() or any(c in install for c in '"\n\\$')):
        raise UsageError(f"--install {install!r}: expected a pip requirement such as 'runenv[s3]==0.1.0'")
    workflow = render_workflow(ws, install=install)
    path = workflow.path
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if current is not None and current != workflow.text and not force:
        raise UsageError(
            f"{path} exists and differs from the workflow runenv writes", hint="pass --force to replace it"
        )
    state = "unchanged" if current == workflow.text else ("replaced" if current is not None else "written")
    if state != "unchanged":
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, workflow.text)
    opts.emit({"path": str(path), "state": state}, f"{state} {path}")
