"""`toonfarm watch`, `toonfarm serve`, `toonfarm server`: the farm's long-running processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import AllowOutsideOpt, resolve_settings, runtime_defaults

app = typer.Typer()
ShotListsArg = Annotated[list[Path], typer.Argument(help="Shot lists, or folders holding them (*.yaml, *.csv).")]


def _shotlists(items: list[Path]) -> list[Path]:
    found: list[Path] = []
    for item in items:
        if item.is_dir():
            found += sorted(p for p in item.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".csv"))
        elif item.is_file():
            found.append(item)
        else:
            raise ValueError(f"{item}: no such shot list or folder")
    if not found:
        raise ValueError(f"{', '.join(map(str, items))}: no shot lists (*.yaml, *.csv) found")
    return found


def _need_server() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ValueError("PREFECT_API_URL is not set: start `toonfarm server` and export the URL it prints")


@app.command()
def watch(shotlists: ShotListsArg, allow_outside_root: AllowOutsideOpt = None) -> None:
    """Watch the keyframes and sources of shot lists; emit `toonfarm.keyframe.changed` for each shot whose
    content changed (a touched file with the same bytes is ignored)."""
    from tasks.watch import SourceIndex, watch_changes

    settings = resolve_settings(allow_outside_root=allow_outside_root)
    index = SourceIndex(_shotlists(shotlists), allow_outside_root=settings.allow_outside_root)
    runtime_defaults()
    _need_server()
    from flows.triggers import emit_keyframe_changed

    typer.echo(f"watching {len(index.hashes)} files in {len(index.folders)} folders; Ctrl-C stops", err=True)
    try:
        for changes in watch_changes(index):
            for change in changes:
                emit_keyframe_changed(change)
                typer.echo(f"changed: {change.shot.id} ({change.path})", err=True)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def serve(
    shotlist: Annotated[Path, typer.Argument(help="The shot list the nightly run renders.")],
    cron: Annotated[str, typer.Option(help="When the nightly batch runs (cron syntax).")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedule.")] = "UTC",
    limit: Annotated[int, typer.Option(help="Flow runs at once (they share the farm).")] = 1,
) -> None:
    """Serve the deployments: the nightly batch on `--cron`, and a re-render whenever a shot changes."""
    if not shotlist.is_file():
        raise ValueError(f"{shotlist}: no such shot list")
    runtime_defaults()
    _need_server()
    from prefect import serve as prefect_serve

    from flows.triggers import deployments

    prefect_serve(*deployments(str(shotlist.resolve()), cron=cron, timezone=timezone), limit=limit)


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI.")] = 4200,
) -> None:
    """Start the Prefect server (API + producer dashboard) on 127.0.0.1, without telemetry."""
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_API_URL": url}
    typer.echo(f"export PREFECT_API_URL={url}", err=True)
    prefect = Path(sys.executable).with_name("prefect")
    raise typer.Exit(subprocess.call([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env))
