"""The batch report: what the CLI prints, what the producer dashboard shows, and the exit status."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.publish import ShotOutcome
from tasks.qa import qa_markdown
from tooncrafter_model.store import version_name


@dataclass(frozen=True)
class BatchReport:
    """Every shot's outcome, shots that could not even be planned, and the pair counts."""

    outcomes: tuple[ShotOutcome, ...]
    unplanned: tuple[tuple[str, str], ...] = ()  # (shot id, error): bad media and the like
    flow_run_id: str | None = None
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

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
        return not self.unplanned and all(o.status != "failed" for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return [e for _, e in self.unplanned] + [e for o in self.outcomes for e in o.errors]

    @property
    def summary(self) -> str:
        return f"rendered {self.rendered} pairs, reused {self.reused}, failed {self.failed}"


def report_rows(batch: BatchReport) -> list[dict[str, object]]:
    """One row per shot, for a Prefect table artifact."""
    rows: list[dict[str, object]] = [
        {
            "shot": o.shot_id,
            "status": o.status,
            "version": version_name(o.version) if o.version else "",
            "frames": o.frame_count,
            "rendered": o.rendered,
            "reused": o.reused,
            "failed": o.failed,
            "output": o.mp4 or "",
            "error": "; ".join(o.errors),
        }
        for o in batch.outcomes
    ]
    rows += [{"shot": s, "status": "failed", "version": "", "frames": 0, "rendered": 0, "reused": 0, "failed": 0,
              "output": "", "error": e} for s, e in batch.unplanned]
    return rows


def report_markdown(batch: BatchReport) -> str:
    """A short markdown summary: the counts line, then the errors, if any."""
    lines = [f"## Batch: {batch.summary}", ""]
    new = [o for o in batch.outcomes if o.status == "new-version"]
    lines.append(f"{len(new)} new versions, {sum(o.status == 'unchanged' for o in batch.outcomes)} unchanged, "
                 f"{sum(o.status == 'failed' for o in batch.outcomes) + len(batch.unplanned)} failed shots.")
    if batch.errors:
        lines += ["", "### Errors", *[f"- {e}" for e in batch.errors]]
    flagged = [line for o in batch.outcomes for line in qa_markdown(o.shot_id, o.qa)]
    if flagged:
        lines += ["", "### Quality: flagged pairs", "", *flagged]
    return "\n".join(lines) + "\n"
