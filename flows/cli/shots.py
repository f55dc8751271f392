"""`toonfarm plan`: what a shot list would render, without rendering anything."""

from __future__ import annotations

import json
import tempfile

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.options import AllowOutsideOpt, DefaultOpt, JsonOpt, ShotListArg, parse_defaults, resolve_settings
from tasks.plan import plan_shots

app = typer.Typer()


@app.command()
def plan(
    shotlist: ShotListArg, json_out: JsonOpt = False, allow_outside_root: AllowOutsideOpt = None, default: DefaultOpt = None
) -> None:
    """Find each shot's cuts, held drawings and keyframe pairs (a dry run: nothing is rendered)."""
    settings = resolve_settings(allow_outside_root=allow_outside_root, shot_defaults=parse_defaults(default))
    with tempfile.TemporaryDirectory(prefix="toonfarm-plan-") as scratch:
        plans, failures = plan_shots(
            shotlist, scratch, allow_outside_root=settings.allow_outside_root, defaults=settings.shot_defaults,
            limits=settings.limits,
        )
    if json_out:
        doc: dict[str, object] = {"shots": [p.to_json() for p in plans]}
        if failures:
            doc["failed"] = [{"shot": shot_id, "error": error} for shot_id, error in failures]
        typer.echo(json.dumps(doc, indent=2))
    else:
        table = Table("shot", "frames", "cuts", "keyframes", "pairs", "in-betweens")
        for p in plans:
            inbetweens = sum(pair.inbetweens for pair in p.pairs)
            table.add_row(p.shot.id, str(p.frame_count), str(len(p.cuts)), str(len(p.keyframes)), str(len(p.pairs)), str(inbetweens))
        Console().print(table)
    for _, error in failures:
        typer.echo(f"toonfarm: {error}", err=True)
    raise typer.Exit(1 if failures else 0)
