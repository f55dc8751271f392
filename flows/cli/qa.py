"""`toonfarm qa`: quality scores and flags for any in-betweens, hand-drawn or generated."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.cli.options import JsonOpt
from tooncrafter_model.errors import UserError

if TYPE_CHECKING:
    from tooncrafter_model.quality import PairQuality, QAThresholds

app = typer.Typer()

TimesOpt = Annotated[
    str | None,
    typer.Option("--times", help="Comma-separated times of the in-betweens in (0, 1); default: evenly spaced."),
]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="Override a flag threshold: NAME=VALUE, NAME one of tone, flicker, ghost, lines, vanish (repeatable).",
    ),
]


@app.command()
def qa(
    key_a: Annotated[Path, typer.Argument(help="The keyframe before the in-betweens.", show_default=False)],
    key_b: Annotated[Path, typer.Argument(help="The keyframe after them.", show_default=False)],
    frames: Annotated[list[Path], typer.Argument(help="The in-betweens, in order.", show_default=False)],
    times: TimesOpt = None,
    threshold: ThresholdOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score in-betweens against their keyframes; exit 0 when clean, 1 when flagged, 2 on bad input."""
    from tooncrafter_model.frames import read_image
    from tooncrafter_model.quality import score_pair

    limits = parse_thresholds(threshold or [])
    at = parse_times(times, len(frames))
    # As studios hand pictures over (16-bit, grey, alpha over white), like keyframes at ingest.
    a, b = read_image(key_a).frame, read_image(key_b).frame
    if a.shape != b.shape:
        raise UserError(f"{key_b}: {b.shape[1]}x{b.shape[0]} differs from {key_a} ({a.shape[1]}x{a.shape[0]})")
    inbetweens = []
    for path in frames:
        frame = read_image(path).frame
        if frame.shape != a.shape:
            size = f"{frame.shape[1]}x{frame.shape[0]}"
            raise UserError(f"{path}: {size} differs from the keyframes ({a.shape[1]}x{a.shape[0]})")
        inbetweens.append(frame)
    quality = score_pair(a, b, at, inbetweens, limits)
    if json_out:
        typer.echo(json.dumps(report(key_a, key_b, frames, at, quality, limits), indent=2))
    else:
        show(frames, at, quality, limits)
    raise typer.Exit(1 if quality.flagged else 0)


def parse_thresholds(items: list[str]) -> QAThresholds:
    """`name=value` overrides of the default thresholds; raises UserError naming the bad one."""
    from dataclasses import fields, replace

    from tooncrafter_model.quality import QAThresholds

    names = [f.name for f in fields(QAThresholds)]
    given: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in names:
            raise UserError(f"--threshold {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
        try:
            given[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--threshold {name.strip()}: not a number: {value!r}") from None
    try:
        return replace(QAThresholds(), **given)
    except ValueError as exc:
        raise UserError(f"--threshold {str(exc).removeprefix('QAThresholds.')}") from None


def parse_times(text: str | None, count: int) -> list[float]:
    """The in-betweens' times: given (one per frame, each in (0, 1)) or evenly spaced."""
    if text is None:
        return [(i + 1) / (count + 1) for i in range(count)]
    try:
        at = [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--times: not a comma-separated list of numbers: {text!r}") from None
    if len(at) != count:
        raise UserError(f"--times: {len(at)} times for {count} in-betweens")
    if any(not 0.0 < t < 1.0 for t in at):
        raise UserError(f"--times: every time must lie strictly between 0 and 1, got {text}")
    return at


def report(
    key_a: Path, key_b: Path, frames: list[Path], at: list[float], quality: PairQuality, limits: QAThresholds
) -> dict[str, object]:
    """The `--json` document: every frame's file, time, scores and flags, and the problems by file."""
    by_index = {s.index: s for s in quality.frames}
    return {
        "key_a": str(key_a),
        "key_b": str(key_b),
        "flagged": quality.flagged,
        "thresholds": asdict(limits),
        "problems": [_by_file(line, frames, at) for line in quality.problems],
        "frames": [
            {"file": str(path), **by_index[i + 1].as_json(), "flags": by_index[i + 1].over(limits)}
            for i, path in enumerate(frames)
        ],
        "seconds": round(quality.seconds, 4),
    }


def show(frames: list[Path], at: list[float], quality: PairQuality, limits: QAThresholds) -> None:
    """A table of the scores (those over their threshold in red), one line per problem or flag, a verdict."""
    from tooncrafter_model.quality import SCORES

    table = Table("frame", "t", *SCORES)
    lines = [_by_file(line, frames, at) for line in quality.problems]
    for s in quality.frames:
        over = {o.split()[0] for o in s.over(limits)}
        cells = []
        for score in SCORES:
            value = getattr(s, score)
            text = "-" if value is None else f"{value:.3g}"
            cells.append(f"[red]{text}[/red]" if score in over else text)
        table.add_row(escape(frames[s.index - 1].name), f"{s.t:g}", *cells)
        lines += [f"{frames[s.index - 1]}: {o}" for o in s.over(limits)]
    Console().print(table)
    for line in lines:
        typer.echo(line)
    bad = {line.split(": ", 1)[0] for line in lines}
    verdict = f"flagged: {len(bad)} of {len(frames)} frames" if quality.flagged else "clean"
    typer.echo(f"{verdict} ({quality.seconds:.2f} s)")


def _by_file(line: str, frames: list[Path], at: list[float]) -> str:
    """A QA message with its frame label (`frame 0002 (t=0.5)`) replaced by the frame's file."""
    from tooncrafter_model.quality import frame_label

    for i, (path, t) in enumerate(zip(frames, at, strict=True)):
        label = frame_label(i + 1, t)
        if line.startswith(f"{label}: "):
            return f"{path}: {line.removeprefix(label + ': ')}"
    return line
