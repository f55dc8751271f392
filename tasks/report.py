"""The batch report: what the CLI prints, what the producer dashboard shows, and the exit status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from tasks.history import cost
from tasks.publish import ShotOutcome
from tasks.render import ShotRenders
from tasks.qa import qa_markdown


@dataclass(frozen=True)
class BatchReport:
    """Every shot's outcome, shots that could not even be planned, and the pair counts."""

    outcomes: tuple[ShotOutcome, ...]
    unplanned: tuple[tuple[str, str], ...] = ()  # (shot id, error): bad media and the like
    flow_run_id: str | None = None
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    gpus: float = 0.0  # GPUs each worker held: its worker-seconds are GPU-seconds times this
    stopped: str = ""  # why the batch stopped before its end (the shot DB stayed away past db_retry_s)
    unfinished: tuple[str, ...] = ()  # the shots the stop failed, before or as they published (failed outcomes)

    def stopped_by(self, why: str, shot_ids: Iterable[str], so_far: Mapping[str, ShotRenders]) -> BatchReport:
        """This report of a batch that stopped for `why`: every shot of `shot_ids` with no outcome yet
        failed as not finished, with the pairs it had rendered by then (`so_far`), so the counts and the
        dashboard still account for every shot and every pair. Shots that failed of the same cause count
        among the unfinished: the stop is said once for all of them."""
        done = {o.shot_id for o in self.outcomes} | {s for s, _ in self.unplanned}
        left = tuple(s for s in shot_ids if s not in done)
        hit = tuple(o.shot_id for o in self.outcomes if o.status == "failed" and any(why in e for e in o.errors))
        cut = []
        for s in left:
            r = so_far.get(s)
            cut.append(ShotOutcome(s, "failed", errors=(f"{s}: not finished, the batch stopped ({why})",),
                                   rendered=r.rendered if r else 0, reused=r.reused if r else 0,
                                   failed=r.failed if r else 0, worker_seconds=r.worker_seconds if r else 0.0))
        return replace(self, outcomes=self.outcomes + tuple(cut), stopped=why, unfinished=hit + left)

    @property
    def rendered(self) -> int:
        return sum(o.rendered for o in self.outcomes)

    @property
    def reused(self) -> int:
        return sum(o.reused for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when every shot of the list rendered (new version or unchanged)."""
        return not self.stopped and not self.unplanned and all(o.status != "failed" for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return [e for _, e in self.unplanned] + [e for o in self.outcomes for e in o.errors]

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(shot id, why) for every failed shot: the first line of the first error it met (naming the file and
        the field, or the shot and the pair)."""
        failed = [(o.shot_id, o.errors[0] if o.errors else "failed") for o in self.outcomes if o.status == "failed"]
        return [(s, _first_line(e)) for s, e in [*self.unplanned, *failed]]

    @property
    def worker_seconds(self) -> float:
        return sum(o.worker_seconds for o in self.outcomes)

    @property
    def summary(self) -> str:
        """The pair counts: `rendered N pairs, reused M, failed K`."""
        return f"rendered {self.rendered} pairs, reused {self.reused}, failed {self.failed}"

    @property
    def shot_counts(self) -> str:
        new = sum(o.status == "new-version" for o in self.outcomes)
        unchanged = sum(o.status == "unchanged" for o in self.outcomes)
        return f"{new} shots new, {unchanged} unchanged, {len(self.failures)} failed"

    @property
    def summary_line(self) -> str:
        """What the CLI ends with: `3 shots new, 1 unchanged, 1 failed; rendered N pairs, reused M, failed K;
        12.5 worker-s`."""
        return f"{self.shot_counts}; {self.summary}; {cost(self.worker_seconds, self.gpus)}"

    @property
    def state_message(self) -> str:
        """The flow run's state message: the summary line, then one line per failed shot (punctuated to read
        right where the UI folds the lines into one)."""
        failed = [f"- {s}: {why.removeprefix(f'{s}: ')}" for s, why in self.failures]
        stop = [f"Stopped: {self.stopped}."] if self.stopped else []
        return "\n".join([*stop, f"{self.summary_line}. Failed shots:", *failed] if failed else [*stop, self.summary_line])


def _first_line(error: str) -> str:
    return error.strip().splitlines()[0] if error.strip() else "failed"


def report_markdown(batch: BatchReport) -> str:
    """A short markdown summary: the counts line, then the errors, if any."""
    lines = [f"## Batch: {batch.summary_line}", ""]
    if batch.stopped:
        lines += [f"**Stopped before its end:** {batch.stopped}. Run it again: what was done is kept.", ""]
    if batch.failures:
        lines += ["### Failed shots", *[f"- **{s}**: {why}" for s, why in batch.failures]]
    flagged = [line for o in batch.outcomes for line in qa_markdown(o.shot_id, o.qa)]
    if flagged:
        lines += ["", "### Quality: flagged pairs", "", *flagged]
    return "\n".join(lines) + "\n"
