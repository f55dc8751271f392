"""`toonfarm history`, `toonfarm lineage`, `toonfarm db upgrade`: the shot DB's answers."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.options import DbOpt, JsonOpt, OutputRootOpt, resolve_settings
from shot_db import ShotDB
from shot_db.records import BatchInfo, Lineage, QADecisionInfo, RenderInfo, VersionInfo
from tasks.deliver import video_of
from tasks.history import cost, latest_batches, lineage_of, shot_versions
from tasks.record import open_db
from tooncrafter_model.store import version_name

app = typer.Typer()
db_app = typer.Typer(no_args_is_help=True, help="The shot DB itself.")
app.add_typer(db_app, name="db")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _open(output_root: Path | None, db: str | None, *, migrate: bool = False) -> ShotDB:
    """Reads never migrate: a shot DB behind this code is refused, naming `toonfarm db upgrade`."""
    settings = resolve_settings(output_root=output_root, db=db)
    if migrate:  # may create the SQLite file the farm's other users read
        settings.share_files()
    return open_db(settings.db_url, migrate=migrate)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@app.command()
def history(
    shot: Annotated[str, typer.Argument(help="show/sequence/code, or a shot code that only one shot has.")],
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Every version of a shot, oldest first, with what it was made from."""
    with _open(output_root, db) as database:
        versions = shot_versions(database, shot)
    if json_out:
        typer.echo(json.dumps(_jsonable(list(versions)), indent=2))
        return
    table = Table("version", "created", "frames", "pairs", "backend", "cost", "flow run", "outputs", "video")
    for v in versions:
        backends = sorted({r.backend for r in v.renders}) or ["-"]
        table.add_row(version_name(v.number), _when(v.created_at), str(v.frame_count), str(len(v.renders)),
                      ", ".join(backends), _version_cost(v), v.flow_run_id or "-", ", ".join(o.kind for o in v.outputs),
                      video_of(v.outputs) or "-")  # fmt: skip
    Console().print(table)


def _version_cost(v: VersionInfo) -> str:
    """What the version's frames cost to render, whichever batch rendered them (reused ones included)."""
    seconds = sum(r.worker_seconds for r in v.renders)
    gpus = max((r.gpus or 0.0 for r in v.renders), default=0.0)
    return cost(seconds, gpus) if v.renders else "-"


def _origin(v: VersionInfo, pixel_hash: str, frame: int) -> str:
    """The file a keyframe was drawn in, as this version read it (recorded since revision 0005)."""
    found = next((k.origin for k in v.keyframes if k.frame == frame and k.pixel_hash == pixel_hash), None)
    return f"  from {found}" if found else ""


def _describe_render(r: RenderInfo, v: VersionInfo) -> list[str]:
    reused = r.flow_run_id != v.flow_run_id
    made = f"reused from flow run {r.flow_run_id or '-'}" if reused else f"rendered by this version's flow run"
    return [
        f"  render     {r.render_key}  (pair {r.frame_a} -> {r.frame_b})  {made}",
        f"  keyframe A {r.keyframe_a.pixel_hash}  {r.keyframe_a.path}{_origin(v, r.keyframe_a.pixel_hash, r.frame_a)}",
        f"  keyframe B {r.keyframe_b.pixel_hash}  {r.keyframe_b.path}{_origin(v, r.keyframe_b.pixel_hash, r.frame_b)}",
        f"  backend    {r.backend}  weights {r.weights_sha256 or '-'}  config {r.config_hash}  code {r.code_version}",
        f"  params     {json.dumps(dict(r.params), sort_keys=True)}  seed {r.seed}",
        f"  ran on     {r.worker} on host {r.host or '-'} (node {r.node})  {_when(r.started_at)} .. {_when(r.finished_at)}"
        f"  {cost(r.worker_seconds, r.gpus or 0.0)}  flow run {r.flow_run_id or '-'}",
        *_describe_qa(r.qa),
    ]


def _describe_lut(v: VersionInfo) -> str:
    lut, sha = v.settings.get("lut"), v.settings.get("lut_sha256")
    return f"  lut        {lut}  sha256 {sha}" if lut else "  lut        none"


def _describe_qa(qa: QADecisionInfo | None) -> list[str]:
    """Why the pair's render is this one: the quality policy's decision and every render it tried."""
    if qa is None:
        return []
    lines = [f"  qa         {qa.outcome} (on_fail: {qa.policy.get('on_fail')}): flagged {qa.reason}"]
    for t in qa.tries:
        verdict = "flagged: " + "; ".join(t.flags) if t.flags else "clean"
        used = "  <- used" if t.render_key == qa.accepted_key else ""
        lines.append(f"    try {t.number}    {t.backend}  seed {t.seed}  render {t.render_key[:12]}  {verdict}{used}")
    return lines


def _describe(found: Lineage) -> list[str]:
    v: VersionInfo = found.version
    lines = [f"{v.show}/{v.sequence}/{v.code} {version_name(v.number)}  made {_when(v.created_at)}  flow run {v.flow_run_id or '-'}",
             _describe_lut(v)]  # fmt: skip
    if found.frame is None:
        named = [found.output] if found.output is not None else []
        for o in named + [o for o in v.outputs if o not in named]:  # the output asked about first
            lines.append(f"  output     {o.kind}  {o.path}  sha256 {o.sha256 or '-'}  frames {o.frame_count}")
        for r in v.renders:
            lines += _describe_render(r, v)
        return lines
    f = found.frame
    lines.append(f"  frame      {f.number}  pixels {f.pixel_hash}")
    if found.render is not None:
        lines.append(f"  in-between {f.inbetween} of {len(found.render.times)}")
        lines += _describe_render(found.render, v)
    elif found.keyframe is not None:
        k = found.keyframe
        lines.append(f"  keyframe   {k.pixel_hash}  {k.path}{f'  from {k.origin}' if k.origin else ''} (drawn, not generated)")
    return lines


@app.command()
def lineage(
    target: Annotated[str, typer.Argument(help="An output frame (PNG), an output (a video, a sequence's folder), "
                                               "a sidecar, or a pixel or output sha256.")],
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What produced a frame or a video: keyframes, backend, weights, parameters, seed, flow run, worker, time."""
    with _open(output_root, db) as database:
        found = lineage_of(database, target)
    if json_out:
        typer.echo(json.dumps(_jsonable([_lineage_json(x) for x in found]), indent=2))
        return
    for item in found:
        typer.echo("\n".join(_describe(item)))


def _lineage_json(found: Lineage) -> dict[str, Any]:
    """Everything the text shows: the version (keyframes with their origins, the LUT in its settings,
    renders with host and attempts), the frame, and per render whether it was reused and what it cost."""
    v = found.version
    renders = {r.render_key: {"reused": r.flow_run_id != v.flow_run_id, "worker_seconds": r.worker_seconds,
                              "gpu_seconds": r.worker_seconds * (r.gpus or 0.0)} for r in v.renders}  # fmt: skip
    return {"version": v, "frame": found.frame, "output": found.output, "render": found.render,
            "keyframe": found.keyframe, "lut": {"path": v.settings.get("lut"), "sha256": v.settings.get("lut_sha256")},
            "renders": renders}  # fmt: skip


@app.command()
def status(
    output_root: OutputRootOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
    limit: Annotated[int, typer.Option(help="How many of the latest batches.", min=1)] = 5,
) -> None:
    """The latest batches and how each of their shots ended: status, version, pairs, cost, error."""
    with _open(output_root, db) as database:
        batches = latest_batches(database, limit)
    if json_out:
        typer.echo(json.dumps(_jsonable(list(batches)), indent=2))
        return
    console = Console(width=max(120, Console().width))
    if not batches:
        console.print("no batches in the shot DB yet")
    for b in batches:
        console.print(_batch_table(b))


def _batch_table(b: BatchInfo) -> Table:
    spent = _spent(b.worker_seconds, b.gpu_seconds)
    title = (f"{b.name or b.flow_name}  [{'green' if b.status == 'finished' else 'red' if b.status == 'failed' else 'yellow'}]"
             f"{b.status}[/]  {_when(b.started_at)}  trigger {b.trigger or '-'}  rendered {b.rendered} pairs, "
             f"reused {b.reused}, failed {b.failed}; {spent}")  # fmt: skip
    table = Table("shot", "status", "version", "frames", "pairs new/reused/failed", "cost", "error", title=title,
                  title_justify="left")  # fmt: skip
    for s in b.shots:
        style = "red" if s.status == "failed" else ""
        table.add_row(s.shot, s.status, version_name(s.version) if s.version else "-", str(s.frames),
                      f"{s.rendered}/{s.reused}/{s.failed}", _spent(s.worker_seconds, s.gpu_seconds), s.error or "",
                      style=style)  # fmt: skip
    return table


def _spent(worker_seconds: float, gpu_seconds: float) -> str:
    """As recorded: GPU-seconds where the workers held GPUs (cost() with the GPUs folded in), else worker-seconds."""
    return cost(gpu_seconds, 1.0) if gpu_seconds else cost(worker_seconds, 0.0)


@db_app.command()
def upgrade(output_root: OutputRootOpt = None, db: DbOpt = None) -> None:
    """Migrate the shot DB to the current schema (`render` and `demo` do this too; reads never do)."""
    with _open(output_root, db, migrate=True) as database:
        typer.echo(f"shot DB at {database.url} is at the current schema")
