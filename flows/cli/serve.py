"""`toonfarm watch`, `toonfarm serve`, `toonfarm server`: the farm's long-running processes."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import AllowOutsideOpt, OutputRootOpt, resolve_settings, runtime_defaults
from tooncrafter_model.errors import UserError

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
            raise UserError(f"{item}: no such shot list or folder")
    if not found:
        raise UserError(f"{', '.join(map(str, items))}: no shot lists (*.yaml, *.csv) found")
    return found


def _need_server() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise UserError("PREFECT_API_URL is not set: start `toonfarm server` and export the URL it prints")


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
        raise UserError(f"{shotlist}: no such shot list")
    runtime_defaults()
    _need_server()
    from prefect import serve as prefect_serve

    from flows.triggers import deployments

    prefect_serve(*deployments(str(shotlist.resolve()), cron=cron, timezone=timezone), limit=limit)


@app.command()
def server(
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI.")] = 4200,
    host: Annotated[str, typer.Option(help="Address both servers listen on (0.0.0.0 on a farm, see README).")] = "127.0.0.1",
    preview_port: Annotated[int | None, typer.Option(help="Port of the preview server (default 4201).")] = None,
    output_root: OutputRootOpt = None,
) -> None:
    """Start the producer dashboard: the Prefect server (API + UI) and the preview server of the output
    root's pictures and videos, without telemetry. Ctrl-C or SIGTERM stops both, and everything they started."""
    from tasks.previews import PreviewServer, serving

    settings = resolve_settings(output_root=output_root, preview_port=preview_port)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    api = f"http://{local}:{port}/api"
    # Defaults the environment may override: a farm sets PREFECT_SERVER_UI_API_URL to the name browsers
    # use. The UI opens as V1: Prefect's V2 UI asks amplitude.com for its config from the producer's
    # browser even with analytics off (the dashboard test caught it); V2 stays one click away.
    env = {
        "PREFECT_SERVER_UI_API_URL": api,
        "PREFECT_SERVER_UI_V2_ENABLED": "false",
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    try:
        previews = PreviewServer(settings.output_root, host, settings.preview_port)
    except OSError as exc:
        raise UserError(f"preview server on {host}:{settings.preview_port}: {exc.strerror or exc}") from None
    prefect = Path(sys.executable).with_name("prefect")
    with serving(previews):
        typer.echo(f"dashboard: http://{local}:{port}", err=True)
        typer.echo(f"export PREFECT_API_URL={api}", err=True)
        typer.echo(f"previews of {settings.output_root} on port {settings.preview_port}, "
                   f"linked as {settings.preview_base_url}", err=True)
        code = run_owned([str(prefect), "server", "start", "--host", host, "--port", str(port)], env)
    raise typer.Exit(code)


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_owned(command: list[str], env: dict[str, str], *, grace_s: float = 20.0) -> int:
    """Run `command` in a process group of its own and return its exit status (0 when it stopped because
    this process was asked to stop).

    `prefect server start` outlives a parent that merely exits or is killed, so this process owns the
    group: SIGINT, SIGTERM and SIGHUP sent here go to the whole group; a group that has not stopped
    `grace_s` after one is killed; members still there when the command ends are stopped too; and on
    Linux the command gets SIGTERM even when this process dies by SIGKILL.
    """
    child = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_parent_death_signal())
    signalled: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        signalled.append(signum)
        _signal_group(child.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        stop_by: float | None = None
        while True:
            try:
                code = child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if signalled and stop_by is None:
                    stop_by = time.monotonic() + grace_s
                if stop_by is not None and time.monotonic() > stop_by:
                    _signal_group(child.pid, signal.SIGKILL)
                continue
            # uvicorn ends by re-raising the signal it was stopped with: a stop that was asked for is a
            # success; a death by any other signal reads as the shell's 128 + N, never a negative status.
            if code < 0:
                return 0 if signalled else 128 - code
            return code
    finally:
        _stop_group(child, grace_s)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def _stop_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    """Stop whatever is left of the child's group: SIGTERM, then SIGKILL after `grace_s`."""
    if child.poll() is None:
        _signal_group(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
    deadline = time.monotonic() + grace_s
    if not _signal_group(child.pid, signal.SIGTERM):
        return
    while _signal_group(child.pid, 0):
        if time.monotonic() > deadline:
            _signal_group(child.pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux only: a function the child runs before exec so the kernel sends it SIGTERM when its parent
    dies, even by SIGKILL, which no handler here can forward. Looked up before the fork: the child only
    calls it."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1  # <linux/prctl.h>

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_signal
