"""`toonfarm render` and `toonfarm demo`: run the batch flow with progress bars and one summary line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.cli.options import (
    ActorsOpt,
    AllowOutsideOpt,
    DbOpt,
    DefaultOpt,
    DeviceOpt,
    GpusOpt,
    OutputRootOpt,
    RayAddressOpt,
    ShotListArg,
    parse_defaults,
    resolve_settings,
    runtime_defaults,
    serverless,
)
from flows.cli.progress import progress_bars
from flows.cli.reaper import start_reaper
from tasks.record import ShotDBUnreachable, open_db
from tasks.settings import Settings
from tasks.shotlist import load_shotlist
from tooncrafter_model.errors import TransientError, UserError
from tooncrafter_model.store import version_name

app = typer.Typer()
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and Ray's own logs.")]


def run_batch(shotlist: Path, settings: Settings, *, verbose: bool = False) -> int:
    """Render a shot list; print errors and the summary line; return the exit status (0 ok, 1 failures). A batch
    the environment stopped (the shot DB stayed away) raises TransientError after its summary: exit 75."""
    shots = load_shotlist(  # a bad list stops here
        shotlist, allow_outside_root=settings.allow_outside_root, defaults=settings.shot_defaults,
        limits=settings.limits,
    )
    settings.share_files()
    try:
        settings.output_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"output root {settings.output_root}: cannot create it ({exc.strerror})") from None
    try:  # a shot DB that is not there: one line, before anything starts
        open_db(settings.db_url, migrate=True).close()
    except ShotDBUnreachable as exc:  # at the start it is the URL or the server to fix (issue 9: exit 2)
        raise UserError(f"{exc}: check the URL and that its server is running") from None
    start_reaper()  # whatever this run starts ends with it, even when it is killed
    runtime_defaults(verbose=verbose)
    from flows.render_batch import render_batch  # imports Prefect, after its settings are chosen

    console = Console(stderr=True)
    with progress_bars(console, shots=len(shots.shots)), serverless():
        batch = render_batch(str(shotlist), settings)
    for shot_id, why in batch.failures:  # one line per failed shot; --verbose adds every error it met
        if shot_id not in batch.unfinished:  # those the batch stopped before get one line below
            typer.echo(f"error: {why}", err=True)
    if verbose:
        for error in batch.errors:
            typer.echo(f"  {error}", err=True)
    for outcome in batch.outcomes:
        if outcome.version is not None:  # a new version, or the unchanged latest one; a failed shot has none
            typer.echo(f"{outcome.shot_id}: {version_name(outcome.version)} ({outcome.status}) {outcome.mp4}")
    typer.echo(batch.summary_line)
    if batch.stopped:
        n = len(batch.unfinished)
        left = f"{n} shot{'' if n == 1 else 's'} not finished" if n else "its end not recorded"
        raise TransientError(f"{batch.stopped}; the batch stopped, {left}: run it again, what was done is kept")
    return 0 if batch.ok else 1


@app.command()
def render(
    shotlist: ShotListArg,
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    ray_address: RayAddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    device: DeviceOpt = None,
    allow_outside_root: AllowOutsideOpt = None,
    default: DefaultOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Render every shot of a shot list: new versions for what changed, nothing for what did not."""
    settings = resolve_settings(
        output_root=output_root, db=db, ray_address=ray_address, actors=actors, gpus_per_actor=gpus_per_actor,
        device=device, allow_outside_root=allow_outside_root, shot_defaults=parse_defaults(default),
    )
    raise typer.Exit(run_batch(shotlist, settings, verbose=verbose))


@app.command()
def demo(
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    actors: ActorsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write example shots (synthetic cartoons: a cut, drawings on 2s/3s/4s, a show LUT) and render them."""
    from tasks.demo import write_demo

    settings = resolve_settings(output_root=output_root or Path("demo_out"), db=db, actors=actors)
    shotlist = write_demo(settings.output_root / "shots")
    typer.echo(f"demo shot list: {shotlist}")
    raise typer.Exit(run_batch(shotlist, settings, verbose=verbose))
