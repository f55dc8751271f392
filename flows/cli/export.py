"""`toonfarm export SHOTLIST OUT.otio|OUT.edl`: the newest version of every shot as an editor's timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import AllowOutsideOpt, DbOpt, DefaultOpt, OutputRootOpt, ShotListArg, parse_defaults, resolve_settings
from tasks.export import export_cut
from tasks.record import open_db
from tasks.shotlist import load_shotlist

app = typer.Typer()


@app.command()
def export(
    shotlist: ShotListArg,
    out: Annotated[Path, typer.Argument(help="The timeline to write: a .otio file or a CMX 3600 .edl.", show_default=False)],
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    allow_outside_root: AllowOutsideOpt = None,
    default: DefaultOpt = None,
) -> None:
    """Write a timeline of the newest version of every shot, each clip pointing at its delivered file.

    A cut (.otio, .edl) comes back with the same clips, order and record timing; a YAML or CSV list plays
    its shots back to back in list order. Each clip points at the ProRes 4444 when one was delivered, else
    at the H.264 MP4. Shots without a version are left as gaps (a cut) or out (a list), with a warning.
    """
    settings = resolve_settings(
        output_root=output_root, db=db, allow_outside_root=allow_outside_root, shot_defaults=parse_defaults(default)
    )
    shots = load_shotlist(
        shotlist, allow_outside_root=settings.allow_outside_root, defaults=settings.shot_defaults, limits=settings.limits
    )
    with open_db(settings.db_url, migrate=False) as database:
        done = export_cut(database, shots, out)
    for warning in done.warnings:
        typer.echo(f"toonfarm: warning: {warning}", err=True)
    clips = ", ".join(f"{n} {kind}" for kind, n in sorted(done.formats.items())) or "no clips"
    gaps = f", {done.gaps} gap{'s' if done.gaps != 1 else ''}" if done.gaps else ""
    typer.echo(f"wrote {done.path}: {clips}{gaps}")
