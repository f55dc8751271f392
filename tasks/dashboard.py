"""The producer dashboard of a batch, live in the Prefect UI.

The flow run is named after the batch and its date and tagged with every show and sequence it holds and
with what started it, so the Runs page filters by them. While it renders, a progress artifact advances
as pairs settle (and as a long ToonCrafter pair samples), and each sequence's shot table (a markdown
artifact, keyed per show and sequence: the Artifacts page lists the latest of each) is updated as each
shot is published: thumbnail, status, version, cost, the video's link, the error, and the contact sheets.
The run's story goes to its Logs tab at INFO. Its final state is Failed when any shot failed, with a
message naming each failed shot and why (tasks/report.py). Why pictures are served and not inlined:
ARCHITECTURE.md, "Pictures on the dashboard".
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import State, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactUpdate
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from tasks.contact import data_uri
from tasks.previews import preview_url
from tasks.publish import ShotOutcome
from tasks.qa import qa_markdown
from tasks.history import cost
from tasks.report import BatchReport
from tasks.settings import Settings
from tasks.shotlist import Shot
from tooncrafter_model.store import version_name

TRIGGERS = ("cli", "nightly", "keyframe-change")
_PROGRESS_EVERY_S = 1.0  # a 1000-pair batch would otherwise write 1000 artifact updates


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from names: lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-") or "batch"


def run_name(shotlist: str, shots: Sequence[Shot], trigger: str, when: datetime, only: Sequence[str] | None) -> str:
    """`shots.yaml 2026-11-27 02:00`, `nightly sq010 2026-11-27`, or `sq010_sh0010 re-render 2026-11-27 02:05`."""
    if trigger == "keyframe-change" or only:
        return f"{', '.join(s.code for s in shots) or 'no shot'} re-render {when:%Y-%m-%d %H:%M}"
    if trigger == "nightly":
        return f"nightly {' '.join(dict.fromkeys(s.sequence for s in shots))} {when:%Y-%m-%d}"
    return f"{Path(shotlist).name} {when:%Y-%m-%d %H:%M}"


def planned_run_name() -> str:
    """The name a batch's flow run starts with, from its parameters (Prefect's `flow_run_name`): the shot
    list's or the shot's; `Dashboard.named` completes it once the shot list is read (a nightly's sequences)."""
    params, when = flow_run.parameters, datetime.now().astimezone()
    only = params.get("shots") or ([params["shot"]] if params.get("shot") else None)
    if only:
        return f"{', '.join(str(s).rsplit('/', 1)[-1] for s in only)} re-render {when:%Y-%m-%d %H:%M}"
    if params.get("trigger") == "nightly":
        return f"nightly {when:%Y-%m-%d}"
    return f"{Path(str(params.get('shotlist', 'batch'))).name} {when:%Y-%m-%d %H:%M}"


def run_tags(shots: Iterable[Shot], trigger: str) -> list[str]:
    """`show:<show>` and `sequence:<sequence>` for every show and sequence of the batch, and `trigger:<how>`."""
    shots = list(shots)
    return [*dict.fromkeys(f"show:{s.show}" for s in shots), *dict.fromkeys(f"sequence:{s.sequence}" for s in shots),
            f"trigger:{trigger}"]  # fmt: skip


@dataclass
class _Row:
    shot: Shot
    status: str = "planned"
    outcome: ShotOutcome | None = None
    error: str = ""


@dataclass
class _Table:
    """One sequence's shot table artifact: its key, id once created, and its rows in render order."""

    key: str
    title: str
    rows: dict[str, _Row] = field(default_factory=dict)
    artifact: UUID | None = None


class Dashboard:
    """What one batch shows in the Prefect UI while it runs, and the state it ends in. Thread-safe: shots
    are published from Prefect's task threads."""

    def __init__(self, settings: Settings, shotlist: str, trigger: str, when: datetime | None = None) -> None:
        self.settings, self.shotlist, self.trigger = settings, shotlist, trigger
        self.when = when or datetime.now().astimezone()
        self.run_id = str(flow_run.id) if flow_run.id else None
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._progress: UUID | None = None
        self._pairs = self._done = 0
        self._steps: dict[str, float] = {}  # render key -> fraction of its sampling steps done
        self._finished: set[str] = set()
        self._shown = 0.0
        self.name: str | None = None

    @property
    def log(self) -> Any:
        return get_run_logger()

    # --------------------------------------------------------------------------------------- planning

    def named(self, shots: Sequence[Shot], only: Sequence[str] | None) -> None:
        """Name and tag the flow run after its batch (a deployment's run gets its shots' tags here too)."""
        self.name = name = run_name(self.shotlist, shots, self.trigger, self.when, only)
        if self.run_id is None:
            return
        tags = [*dict.fromkeys([*flow_run.tags, *run_tags(shots, self.trigger)])]
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(self.run_id), name=name if name != flow_run.name else None, tags=tags)
        self.log.info("batch %s: %d shots of %s (%s)", name, len(shots), self.shotlist, ", ".join(tags))

    def planned(self, shots: Sequence[Shot], unplanned: Sequence[tuple[str, str]], pairs: int, reused: int) -> None:
        """The shot tables with every shot planned (or failed already), and the progress artifact at 0."""
        failed = dict(unplanned)
        for shot in shots:
            table = self._tables.setdefault(
                f"{shot.show}/{shot.sequence}",
                _Table(artifact_key("shots", shot.show, shot.sequence), f"{shot.show} / {shot.sequence}"),
            )
            table.rows[shot.id] = _Row(shot, "failed" if shot.id in failed else "planned", error=failed.get(shot.id, ""))
        for shot_id, error in unplanned:
            self.log.error("%s failed: %s", shot_id, error)
        self._pairs = pairs
        self.log.info("planned %d shots: %d pairs to render, %d reused", len(shots) - len(failed), pairs, reused)
        self._progress = cast(UUID, create_progress_artifact(  # sync here: async_dispatch types it as both
            progress=0.0 if pairs else 100.0, key=artifact_key("progress", *self.sequences),
            description=self._progress_text(),
        ))
        for table in self._tables.values():
            self._show(table)

    def rendering(self) -> None:
        workers = self.settings.actors
        self.log.info("rendering %d pairs on %d worker%s (%s)", self._pairs, workers, "" if workers == 1 else "s",
                      f"{self.settings.actor_gpus:g} GPU each" if self.settings.actor_gpus else "CPU")  # fmt: skip

    # -------------------------------------------------------------------------------------- progress

    def pair_done(self, render_key: str) -> None:
        with self._lock:
            self._done += 1
            self._steps.pop(render_key, None)
            self._finished.add(render_key)
        self._advance(force=self._done == self._pairs)

    def pair_added(self) -> None:
        """The QA policy queued another try of a flagged pair: one more pair to render."""
        with self._lock:
            self._pairs += 1
        self._advance()

    def pair_step(self, render_key: str, step: int, steps: int) -> None:
        """A pair's sampler reached `step` of `steps` (ToonCrafter's DDIM): part of a pair counts."""
        with self._lock:
            if render_key in self._finished:  # the board is read after results: a late step of a done pair
                return
            self._steps[render_key] = step / steps if steps else 0.0
        self._advance()

    def _advance(self, *, force: bool = False) -> None:
        if self._progress is None or not self._pairs:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._shown < _PROGRESS_EVERY_S:
                return
            self._shown = now
            progress = min(100.0, 100.0 * (self._done + sum(self._steps.values())) / self._pairs)
        update_progress_artifact(self._progress, progress=round(progress, 1), description=self._progress_text())

    def _progress_text(self) -> str:
        return f"{self._done} of {self._pairs} pairs rendered" + (
            f", {len(self._steps)} sampling" if self._steps else ""
        )

    # ------------------------------------------------------------------------------------ publishing

    def published(self, outcome: ShotOutcome) -> None:
        """Log the shot's outcome and show it in its sequence's table."""
        if outcome.status == "failed":
            self.log.error("%s failed: %s", outcome.shot_id, outcome.errors[0] if outcome.errors else "failed")
        else:
            self.log.info("%s published %s (%s): %d frames, %d pairs rendered, %d reused, %s",
                          outcome.shot_id, version_name(outcome.version or 0), outcome.status, outcome.frame_count,
                          outcome.rendered, outcome.reused, cost(outcome.worker_seconds, self.settings.actor_gpus))  # fmt: skip
        with self._lock:
            table = next((t for t in self._tables.values() if outcome.shot_id in t.rows), None)
            if table is None:
                return
            row = table.rows[outcome.shot_id]
            row.status, row.outcome, row.error = outcome.status, outcome, "; ".join(outcome.errors)
            self._show(table)

    def _planned_still(self, shot_id: str) -> bool:
        """False once the shot's outcome was shown (`published`)."""
        with self._lock:
            return all(t.rows[shot_id].status == "planned" for t in self._tables.values() if shot_id in t.rows)

    def _show(self, table: _Table) -> None:
        markdown = shot_table(table.title, list(table.rows.values()), self.settings, self.run_id)
        description = _counts(table.rows.values())
        if table.artifact is None:
            table.artifact = cast(UUID, create_markdown_artifact(markdown, key=table.key, description=description))
            return
        with get_client(sync_client=True) as client:
            client.update_artifact(table.artifact, ArtifactUpdate(data=markdown, description=description))

    @property
    def sequences(self) -> list[str]:
        return [t.key.removeprefix("shots-") for t in self._tables.values()] or ["batch"]

    # ------------------------------------------------------------------------------------------- end

    def finish(self, batch: BatchReport) -> State[BatchReport]:
        """The run's final state: Failed, naming each failed shot and why, when any shot failed (the shots a
        stopped batch did not finish among them)."""
        for outcome in batch.outcomes:
            if outcome.shot_id in batch.unfinished and self._planned_still(outcome.shot_id):
                self.published(outcome)  # a shot the stop cut before it published; the others were shown
        self._advance(force=True)
        self.log.info(batch.summary_line)
        if batch.ok:
            return Completed(message=batch.summary_line, data=batch)
        return Failed(message=batch.state_message, data=batch)


def _counts(rows: Iterable[_Row]) -> str:
    by: dict[str, int] = {}
    for row in rows:
        by[row.status] = by.get(row.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in by.items())


def _picture(path: str | None, settings: Settings) -> str | None:
    return preview_url(settings.preview_base_url, settings.output_root, Path(path)) if path else None


def _thumbnail(outcome: ShotOutcome, settings: Settings) -> str:
    """The thumbnail through the preview server, else inline (a few KB): it shows wherever the output is."""
    if outcome.thumbnail is None:
        return ""
    url = _picture(outcome.thumbnail, settings) or data_uri(Path(outcome.thumbnail).read_bytes())
    return f"![{outcome.shot_id}]({url})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def shot_table(title: str, rows: Sequence[_Row], settings: Settings, run_id: str | None) -> str:
    """A sequence's shots as markdown: one narrow row per shot (thumbnail, status, version, pairs, cost, a
    link that plays the video), so it fits the UI's column on a laptop; then each failed shot's reason on
    a line of its own, and each published shot's contact sheet and flagged pairs."""
    gpus = settings.actor_gpus
    lines = [f"## {title}", "", "| | shot | status | version | pairs | cost | video |", "|---|---|---|---|---|---|---|"]
    failed: list[str] = []
    sheets: list[str] = []
    for row in rows:
        o = row.outcome
        video = ""
        if o and o.mp4:
            url = _picture(o.mp4, settings)
            video = f"[▶ mp4]({url})" if url else f"`{Path(o.mp4).name}`"
        version = version_name(o.version) if o and o.version else ""
        pairs = f"{o.rendered} / {o.reused} / {o.failed}" if o else ""
        spent = cost(o.worker_seconds, gpus) if o else ""
        status = f"**{row.status}**" if row.status == "failed" else row.status
        lines.append("| " + " | ".join([_thumbnail(o, settings) if o else "", row.shot.code, status, version, pairs,
                                         spent, video]) + " |")  # fmt: skip
        if row.error:
            failed.append(f"- **{row.shot.code}**: {_cell(row.error)}")
        if o and o.sheet:
            url = _picture(o.sheet, settings)
            sheet = f"![contact sheet of {row.shot.code} {version}]({url})" if url else f"contact sheet: `{o.sheet}`"
            sheets += [f"### {row.shot.code} {version} ({o.status}, {o.frame_count} frames)", "", sheet, ""]
        if o:
            sheets += qa_markdown(o.shot_id, o.qa)
    legend = ["", "pairs: rendered / reused / failed; cost: " + ("GPU-seconds" if gpus else "worker-seconds")]
    failures = ["", "### Failed", *failed] if failed else []
    footer = [f"flow run `{run_id}`"] if run_id else []
    return "\n".join([*lines, *legend, *failures, "", *sheets, *footer]) + "\n"
