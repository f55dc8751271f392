"""Progress bars for long work, fed by the `toonfarm.progress` logger that the pipeline writes to."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TaskID


class _ProgressHandler(logging.Handler):
    """Turns pipeline events (planned, rendering, pair, published) into bar updates."""

    def __init__(self, bars: Progress) -> None:
        super().__init__()
        self.bars = bars
        self.ids: dict[str, TaskID] = {}

    def _bar(self, name: str, total: float | None = None) -> TaskID:
        if name not in self.ids:
            self.ids[name] = self.bars.add_task(name, total=total)
        elif total is not None:
            self.bars.update(self.ids[name], total=total)
        return self.ids[name]

    def emit(self, record: logging.LogRecord) -> None:
        event: dict[str, Any] = getattr(record, "toonfarm", {})
        kind = event.get("event")
        if kind == "planned":
            self.bars.advance(self._bar("planning shots"))
        elif kind == "rendering":
            self._bar("rendering pairs", total=event["pairs"])
            self._bar("publishing shots", total=event["shots"])
        elif kind == "pair":
            self.bars.advance(self._bar("rendering pairs"))
        elif kind == "try":  # the QA policy queued another try of a flagged pair
            bar = self._bar("rendering pairs")
            total = next(t.total for t in self.bars.tasks if t.id == bar)
            self.bars.update(bar, total=(total or 0) + 1)
        elif kind == "published":
            self.bars.advance(self._bar("publishing shots"))


@contextmanager
def progress_bars(console: Console, *, shots: int) -> Iterator[None]:
    """Show bars for planning, rendering and publishing while the block runs."""
    bars = Progress(
        TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )
    handler = _ProgressHandler(bars)
    handler._bar("planning shots", total=shots)
    logger = logging.getLogger("toonfarm.progress")
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with bars:
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
