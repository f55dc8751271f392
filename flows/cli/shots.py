"""`toonfarm plan`: what a shot list would render, without rendering anything."""

from __future__ import annotations

import json
import tempfile

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.options import AllowOutsideOpt, DefaultOpt, JsonOpt, ShotListArg, parse_defaults, resolve_settings
from tasks.detect import ShotPlan
from tasks.plan import plan_shots

app = typer.Typer()


def _margin(plan: ShotPlan) -> str:
    """"hold 6.9 < 11.9 <= 20.1 change (2.9x)": the strongest hold, the threshold, the weakest change."""
    margin = plan.ingest.margin
    if margin is None:
        return "-"  # keyframe images: nothing detected
    hold = "-" if margin.hold is None else f"{margin.hold:.1f}"
    change = "-" if margin.change is None else f"{margin.change:.1f}"
    ratio = "" if margin.hold is None or margin.change is None else f" ({margin.ratio:.1f}x)"
    return f"{hold} < {margin.threshold:.1f} <= {change}{ratio}"


def _gaps(plan: ShotPlan) -> str:
    runs = [str(a) if a == b else f"{a}-{b}" for a, b in plan.ingest.gaps]
    shown = ", ".join(runs[:8]) + (f" and {len(runs) - 8} more" if len(runs) > 8 else "")
    return f"missing frames {shown} hold the drawing before them"


@app.command()
def plan(
    shotlist: ShotListArg, json_out: JsonOpt = False, allow_outside_root: AllowOutsideOpt = None, default: DefaultOpt = None
) -> None:
    """Find each shot's cuts, held drawings and keyframe pairs (a dry run: nothing is rendered).

    Per shot: the detection margin (strongest hold < threshold <= weakest change), the start timecode,
    image-sequence gaps, where an exposure sheet and detection disagree, and warnings.
    """
    settings = resolve_settings(allow_outside_root=allow_outside_root, shot_defaults=parse_defaults(default))
    with tempfile.TemporaryDirectory(prefix="toonfarm-plan-") as scratch:
        plans, failures = plan_shots(
            shotlist, scratch, allow_outside_root=settings.allow_outside_root, defaults=settings.shot_defaults,
            limits=settings.limits,
        )
    if json_out:
        shots = [{**p.to_json(), "first_frame": p.first_frame, "frames": p.frame_count, "ingest": p.ingest.to_json()}
                 for p in plans]  # fmt: skip
        doc: dict[str, object] = {"shots": shots}
        if failures:
            doc["failed"] = [{"shot": shot_id, "error": error} for shot_id, error in failures]
        typer.echo(json.dumps(doc, indent=2))
    else:
        table = Table("shot", "frames", "cuts", "keyframes", "pairs", "in-betweens", "hold < threshold <= change", "timecode")
        for p in plans:
            inbetweens = sum(pair.inbetweens for pair in p.pairs)
            frames = f"{p.first_frame}-{p.last_frame}"
            table.add_row(p.shot.id, frames, str(len(p.cuts)), str(len(p.keyframes)), str(len(p.pairs)),
                          str(inbetweens), _margin(p), p.ingest.timecode or "-")  # fmt: skip
        Console(width=160).print(table)
        for p in plans:
            lines = [*p.ingest.notes, *([_gaps(p)] if p.ingest.gaps else [])]
            lines += [f"exposure sheet: {d}" for d in p.ingest.disagreements]
            for line in lines:
                typer.echo(f"{p.shot.id}: {line}")
            for warning in p.ingest.warnings:
                typer.echo(f"toonfarm: warning: {p.shot.id}: {warning}", err=True)
    for _, error in failures:
        typer.echo(f"toonfarm: {error}", err=True)
    raise typer.Exit(1 if failures else 0)
